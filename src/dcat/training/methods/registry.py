"""The transfer-method registry: ``@register_method("name")`` on a :class:`TransferMethod`.

A method is one source's transfer term in ``L = CE + Σ_s w_s · L_s``. Its class declares

* the loss (:meth:`TransferMethod.forward`), the heads it adds (submodules built in
  ``__init__``, trained with the target and never exported);
* its options with defaults (:attr:`TransferMethod.options`), each settable from a config;
* its report label, the name of its loss component in a task's output, and its reference.

Adding a method touches its own file plus one import line in ``dcat/training/methods/__init__``
(docs/design.md, "Adding a transfer method").
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from torch import Tensor, nn

from dcat.errors import DcatError
from dcat.nn.model import ModalityNet, ModalityOutput
from dcat.training.cache import SourceOutputs

__all__ = [
    "MethodVariant",
    "TransferMethod",
    "get_method",
    "list_methods",
    "method_names",
    "register_method",
    "resolve_method",
]

_REGISTRY: dict[str, type[TransferMethod]] = {}
M = TypeVar("M", bound="type[TransferMethod]")


class TransferMethod(nn.Module):
    """One frozen source's transfer term for one target, with the heads it trains.

    Subclasses set the class attributes and implement :meth:`forward`; ``__init__`` receives the
    two networks (to size heads and check compatibility) and the resolved options.

    Args:
        source: The frozen source network.
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
        source_network: The method learns from a frozen source network's outputs
            (:meth:`forward`). ``False``: it learns from the source modality's samples
            themselves (``forward_samples(net, source_x, target_x, labels, augment)``, e.g.
            :class:`~dcat.training.methods.virtual.VirtualSamples`), so no source model is
            trained, loaded or cached.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    component: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Any]] = {}
    same_classes: ClassVar[bool] = False
    source_network: ClassVar[bool] = True

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

    def forward(
        self, target: ModalityOutput, source: SourceOutputs, labels: Tensor
    ) -> dict[str, Tensor]:
        """The transfer term of one batch.

        Args:
            target: The target's outputs (``logits (B, K)``, ``embedding (B, d_out)``,
                ``kqv`` each ``(B, S_b, d_out)``).
            source: The frozen source's outputs (``keys``/``values`` ``(B, S_a, d_out)``,
                ``logits (B, K)``, ``embedding (B, d_out)``), from its cache or its forward.
            labels: ``(B,)`` class indices.

        Returns:
            ``{"loss": scalar}`` (unweighted), plus any diagnostics (scalars) to log.
        """
        raise NotImplementedError

    def silences_real(self, epoch: int) -> bool:
        """Whether the target's own cross-entropy is off in training epoch ``epoch`` (0-based):
        a method that pretrains the target on other data first says so; the default never."""
        return False

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
        if name in _REGISTRY:
            raise DcatError(f"transfer method {name!r} is already registered")
        if not (isinstance(cls, type) and issubclass(cls, TransferMethod)):
            raise TypeError(f"@register_method({name!r}) needs a TransferMethod subclass")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def list_methods() -> list[str]:
    """Registered method names, in registration order (the report's column order)."""
    return list(_REGISTRY)


def get_method(name: str) -> type[TransferMethod]:
    """The method class registered as ``name``.

    Raises:
        DcatError: Unknown name (the message lists the registered ones).
    """
    if name not in _REGISTRY:
        raise DcatError(f"method must be one of {list(_REGISTRY)}, got {name!r}")
    return _REGISTRY[name]


def method_names() -> list[str]:
    """Every name a config may use: the registered methods, each followed by its aliases."""
    return [
        spelling
        for name in _REGISTRY
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
    if name not in _REGISTRY:
        raise DcatError(f"{where}: unknown {[name]}; choose from {method_names()}")
    cls = _REGISTRY[name]
    options = {**cls.options, **check_options(cls, entry, where)}
    tag, label = cls.variant(options)
    return MethodVariant(name, tuple(sorted(options.items())), tag, label)
