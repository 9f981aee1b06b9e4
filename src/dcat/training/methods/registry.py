"""The transfer-method registry: ``@register_method("name")`` on a :class:`TransferMethod`.

A method is one source's transfer term in ``L = CE + Σ_s w_s · L_s``. Its class declares

* the loss (:meth:`TransferMethod.forward`), the heads it adds (submodules built in
  ``__init__``, trained with the target and never exported);
* its options with defaults (:attr:`TransferMethod.options`), each settable from a config;
* its report label, the name of its loss component in a task's output, and its reference.

Adding a method touches its own file plus one import line in ``dcat/training/methods/__init__``
(docs/design.md, "Adding a transfer method"); a plug-in package registers its methods through
the ``dcat.methods`` entry-point group. :data:`METHODS` is a :class:`dcat.registry.Registry`,
the idiom of encoders and data sets too.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from torch import Tensor, nn

from dcat.errors import DcatError, did_you_mean
from dcat.nn.model import ModalityNet, ModalityOutput
from dcat.registry import Registry
from dcat.training.cache import SourceOutputs

__all__ = [
    "METHODS",
    "SOURCE_INPUTS",
    "MethodVariant",
    "TransferBatch",
    "TransferMethod",
    "get_method",
    "list_methods",
    "method_names",
    "register_method",
    "resolve_method",
]

METHODS: Registry[type[TransferMethod]] = Registry(
    "transfer method",
    "dcat.methods",
    builtin=("dcat.training.methods",),
    unknown="method must be one of {listed}, got {name}",
    duplicate="transfer method {name} is already registered",
)
"""The method registry: name → :class:`TransferMethod` subclass, in registration order (the
report's column order)."""
M = TypeVar("M", bound="type[TransferMethod]")


SOURCE_INPUTS: dict[str, str] = {
    "outputs": "the frozen source network's outputs (K, V, logits, embedding), cached or run",
    "samples": "the source modality's raw samples of the batch",
    "network": "the frozen source network itself (to compute another signal from the samples)",
}
"""What a method can declare it reads from its source (:attr:`TransferMethod.inputs`)."""


class TransferBatch:
    """One batch as a transfer method sees it: the target's side always, and from the source
    what the method declared in :attr:`TransferMethod.inputs`.

    Attributes:
        target: The target's outputs on its (training-augmented) input: ``logits (B, K)``,
            ``embedding (B, d_out)``, ``kqv`` each ``(B, S_b, d_out)``.
        labels: ``(B,)`` class indices.
        net: The target network (trained), to run on other inputs.
        inputs: ``(B, ...)`` the target's clean input.
        augment: The target's training augmentation (``None`` outside training or without one).
        epoch: The training epoch (0-based).
        served: The source inputs served (the method's declared :attr:`TransferMethod.inputs`).

    The source's side, each readable only when served (else a :class:`DcatError` names the
    undeclared input): :attr:`outputs`, :attr:`samples`, :attr:`network`.
    """

    def __init__(
        self,
        target: ModalityOutput,
        labels: Tensor,
        net: ModalityNet,
        inputs: Tensor,
        *,
        augment: Callable[[Tensor], Tensor] | None = None,
        epoch: int = 0,
        outputs: SourceOutputs | None = None,
        samples: Tensor | None = None,
        network: ModalityNet | None = None,
    ) -> None:
        self.target, self.labels, self.net, self.inputs = target, labels, net, inputs
        self.augment, self.epoch = augment, epoch
        self._source: dict[str, Any] = {"outputs": outputs, "samples": samples, "network": network}
        self.served = frozenset(k for k, v in self._source.items() if v is not None)

    def rows(self, keep: Tensor) -> TransferBatch:
        """This batch restricted to the samples where ``keep`` ``(B,)`` (bool) is true: the
        target's outputs, labels, inputs and the source's side alike."""

        def take(value: Any) -> Any:
            if isinstance(value, Tensor):
                return value[keep]
            if isinstance(value, tuple):  # ModalityOutput, SourceOutputs, (K, Q, V)
                taken = [take(v) for v in value]
                return type(value)(*taken) if hasattr(value, "_fields") else tuple(taken)
            return value

        return TransferBatch(
            take(self.target), self.labels[keep], self.net, self.inputs[keep],
            augment=self.augment, epoch=self.epoch, outputs=take(self._source["outputs"]),
            samples=take(self._source["samples"]), network=self._source["network"],
        )  # fmt: skip

    def _served(self, name: str) -> Any:
        if name not in self.served:
            raise DcatError(
                f"the batch has no source {name!r}: a method reads only what its class declares "
                f"in `inputs` (served here: {sorted(self.served)})"
            )
        return self._source[name]

    @property
    def outputs(self) -> SourceOutputs:
        """``"outputs"``: the source's ``keys``/``values`` ``(B, S_a, d_out)``, ``logits (B, K)``,
        ``embedding (B, d_out)``, from its cache or its forward."""
        return self._served("outputs")

    @property
    def samples(self) -> Tensor:
        """``"samples"``: ``(B, ...)`` the source modality's samples (never augmented)."""
        return self._served("samples")

    @property
    def network(self) -> ModalityNet:
        """``"network"``: the frozen source network (eval mode, no gradients)."""
        return self._served("network")


class TransferMethod(nn.Module):
    """One frozen source's transfer term for one target, with the heads it trains.

    Subclasses set the class attributes and implement :meth:`forward`; ``__init__`` receives the
    two networks (to size heads and check compatibility) and the resolved options.

    Args:
        source: The frozen source network (``None`` for a method that reads no network).
        target: The trained target network.
        name: The source's name in the task (used in error messages).
        **options: Values for :attr:`options` (the defaults fill the rest).

    Class attributes:
        name: Registry name (set by :func:`register_method`).
        label: Column label in reports, e.g. ``"D-CAT"``.
        component: Key of the loss in a task's output dict, e.g. ``"ca"``.
        reference: Where the method comes from (shown in docs and ``dcat`` listings).
        options: Option name → default value.
        same_classes: The method compares class scores, so source and target must share
            their classes (checked when it is built).
        inputs: What it reads from its source, names of :data:`SOURCE_INPUTS`: ``"outputs"``
            (the default), ``"samples"``, ``"network"``. The task serves exactly these in the
            :class:`TransferBatch`; the experiment trains a source network only for a method
            that reads ``"outputs"`` or ``"network"``, and caches only ``"outputs"``.
        source_network: Derived from ``inputs``: whether a trained source network is needed.
        unlabelled: The term can learn from samples without a label (it reads the source, not
            the class); a method whose options decide it overrides :meth:`learns_unlabelled`.
            Without it, a task gives the method its batch's labelled samples only.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    component: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Any]] = {}
    same_classes: ClassVar[bool] = False
    inputs: ClassVar[frozenset[str]] = frozenset({"outputs"})
    source_network: ClassVar[bool] = True
    unlabelled: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = sorted(set(cls.inputs) - set(SOURCE_INPUTS))
        if unknown or not cls.inputs:
            raise TypeError(
                f"{cls.__name__}.inputs must name some of {list(SOURCE_INPUTS)}, got "
                f"{sorted(cls.inputs)}"
            )
        cls.inputs = frozenset(cls.inputs)
        cls.source_network = bool(cls.inputs & {"outputs", "network"})

    def __init__(
        self, source: ModalityNet | None, target: ModalityNet, *, name: str, **options: Any
    ) -> None:
        super().__init__()
        self.source_name = name
        self.config = {**self.options, **check_options(type(self), options, f"source {name!r}")}
        if source is None and self.source_network:
            raise DcatError(f"source {name!r}: method {self.name!r} needs the source's network")
        if self.same_classes and source is not None and source.num_classes != target.num_classes:
            raise DcatError(
                f"source {name!r} has {source.num_classes} classes but the target has "
                f"{target.num_classes}; it was trained on other classes"
            )

    def forward(self, batch: TransferBatch) -> dict[str, Tensor]:
        """The transfer term of one batch.

        Args:
            batch: The target's outputs, labels and network, and what :attr:`inputs` declares
                from the source.

        Returns:
            ``{"loss": scalar}`` (unweighted), plus any diagnostics (scalars) to log.
        """
        raise NotImplementedError

    @classmethod
    def learns_unlabelled(cls, options: Mapping[str, Any]) -> bool:
        """Whether the method with ``options`` can learn from unlabelled samples (default:
        :attr:`unlabelled`)."""
        return cls.unlabelled

    @property
    def takes_unlabelled(self) -> bool:
        """Whether this instance (with its options) learns from unlabelled samples."""
        return self.learns_unlabelled(self.config)

    def silences_real(self, epoch: int) -> bool:
        """Whether the target's own cross-entropy is off in training epoch ``epoch`` (0-based):
        a method that pretrains the target on other data first says so; the default never."""
        return False

    @classmethod
    def check_data(
        cls, source: tuple[str, tuple[int, ...]], target: tuple[str, tuple[int, ...]]
    ) -> None:
        """Refuse, before anything is trained, a pair of modalities the method cannot learn
        from; the default accepts any.

        Args:
            source: The source modality's name and sample shape, e.g. ``("skeleton", (60, 16))``.
            target: The target modality's name and sample shape.

        Raises:
            DcatError: Naming both modalities and the method.
        """

    @classmethod
    def coerce(cls, name: str, value: Any) -> Any:
        """Map an older spelling of option ``name``'s value to its current one (before the
        type check); the default keeps ``value``."""
        return value

    @classmethod
    def validate(cls, options: Mapping[str, Any], where: str) -> None:
        """Check option values (ranges, choices) beyond their types.

        Raises:
            DcatError: Naming ``where`` and the option at fault.
        """

    @classmethod
    def variant(cls, options: Mapping[str, Any]) -> tuple[str, str]:
        """``(tag, label)`` of this method with ``options`` (only those differing from the
        defaults name the variant): the tag names run folders and result records."""
        changed = {k: v for k, v in options.items() if cls.options.get(k) != v}
        if not changed:
            return cls.name, cls.label
        suffix = "_".join(f"{k}{_short(v)}" for k, v in sorted(changed.items()))
        words = ", ".join(f"{k}={_short(v)}" for k, v in sorted(changed.items()))
        return f"{cls.name}_{suffix}", f"{cls.label} ({words})"


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_options(
    cls: type[TransferMethod], options: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """``options`` checked against ``cls.options``: known names, and the default's type.

    Raises:
        DcatError: An unknown option (with a "did you mean"), or a value of the wrong type.
    """
    unknown = sorted(set(options) - set(cls.options))
    if unknown:
        known = sorted(cls.options)
        guess = [m for u in unknown for m in difflib.get_close_matches(u, known, n=1, cutoff=0.6)]
        hint = f"; did you mean {guess[0]!r}?" if len(guess) == 1 else ""
        raise DcatError(
            f"{where}: unknown option(s) {unknown} for method {cls.name!r}; known: {known}{hint}"
        )
    checked = {}
    for key, value in options.items():
        value = cls.coerce(key, value)
        default = cls.options[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise DcatError(
                f"{where}: option {key!r} of method {cls.name!r} must be "
                f"{type(default).__name__}, got {value!r}"
            )
        checked[key] = value
    cls.validate(checked, where)
    return checked


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`TransferMethod` subclass under ``name``."""

    def decorator(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, TransferMethod)):
            raise TypeError(f"@register_method({name!r}) needs a TransferMethod subclass")
        METHODS.add(name, cls)
        cls.name = name
        return cls

    return decorator


def list_methods() -> list[str]:
    """Registered method names, in registration order (the report's column order)."""
    return METHODS.names()


def get_method(name: str) -> type[TransferMethod]:
    """The method class registered as ``name``.

    Raises:
        DcatError: Unknown name (the message lists the registered ones).
    """
    return METHODS.get(name)


def method_names() -> list[str]:
    """Every name a config may use: the registered methods, each followed by its aliases."""
    return [
        spelling
        for name in METHODS.names()
        for spelling in [name, *(a for a, e in ALIASES.items() if e["name"] == name)]
    ]


# Old config spellings that name a method with options.
ALIASES: dict[str, dict[str, Any]] = {"dcat_no_mcma": {"name": "dcat", "mcma": "none"}}


@dataclass(frozen=True)
class MethodVariant:
    """A method with its options, as a config entry asks for it.

    Attributes:
        name: The registered method.
        options: Its full options (defaults filled in).
        tag: Names run folders and result records (``"dcat_no_mcma"``, ``"contrastive"``, ...).
        label: Report column label.
    """

    name: str
    options: tuple[tuple[str, Any], ...]
    tag: str
    label: str

    @property
    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)


def resolve_method(entry: str | Mapping[str, Any], where: str = "methods") -> MethodVariant:
    """A config entry (a name, an alias, or ``{name: ..., option: value}``) → its variant.

    Raises:
        DcatError: An unknown method or option, or a malformed entry, naming ``where``.
    """
    if isinstance(entry, str):
        entry = ALIASES.get(entry, {"name": entry})
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise DcatError(
            f"{where}: a method is a name or a mapping with a 'name' key, got {entry!r}"
        )
    entry = dict(entry)
    name = entry.pop("name")
    if name in ALIASES:
        alias = dict(ALIASES[name])
        name = alias.pop("name")
        entry = {**alias, **entry}
    if name not in METHODS:
        names = method_names()
        raise DcatError(
            f"{where}: unknown {[name]}; choose from {names}{did_you_mean([name], names)}"
        )
    cls = METHODS.get(name)
    options = {**cls.options, **check_options(cls, entry, where)}
    tag, label = cls.variant(options)
    return MethodVariant(name, tuple(sorted(options.items())), tag, label)
