"""Training objectives as plain ``nn.Module``s that return a dict of losses (timm/open_clip style).

Every task's ``forward(batch)`` takes the batch format of :mod:`dcat.data`::

    {"inputs": {modality: Tensor (B, ...)}, "label": (B,) int64, "index": (B,) int64}

and returns ``{"loss", "logits", "ce", ...}``, so the same objective runs in the Lightning
engine or in a user's own loop. Nothing here imports a training framework.

A label may be :data:`~dcat.nn.labels.UNLABELLED`: the cross-entropy skips such samples, and a
transfer method that cannot learn without labels (:meth:`TransferMethod.learns_unlabelled`)
sees the labelled samples of the batch only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from dcat.errors import DcatError
from dcat.nn.labels import UNLABELLED, labelled_cross_entropy
from dcat.nn.losses import DEFAULT_EPS
from dcat.nn.model import ModalityNet, ModalityOutput
from dcat.training.cache import SourceCache, SourceOutputs
from dcat.training.methods import TransferBatch, TransferMethod, get_method, list_methods

__all__ = ["METHODS", "SourceSpec", "TransferTask", "UnimodalTask"]


class _Components(Mapping[str, str]):
    """Method name → the name of its loss component in a task's output dict (from the
    registry, so a newly registered method appears here too)."""

    def __getitem__(self, name: str) -> str:
        return get_method(name).component

    def __iter__(self) -> Iterator[str]:
        return iter(list_methods())

    def __len__(self) -> int:
        return len(list_methods())


METHODS: Mapping[str, str] = _Components()
"""Transfer method → the name of its loss component in a task's output dict."""

# SourceSpec's own fields that are method options (kept for existing callers).
_LEGACY_OPTIONS = ("mcma", "temperature", "projection_dim", "loss_method")


def _labels(batch: Mapping) -> Tensor:
    labels = batch.get("label")
    if not isinstance(labels, Tensor) or labels.ndim != 1:
        raise DcatError(f"batch['label'] must be a (B,) tensor of class indices, got {labels!r}")
    return labels


def _input(batch: Mapping, modality: str) -> Tensor:
    inputs = batch.get("inputs")
    if not isinstance(inputs, Mapping) or modality not in inputs:
        found = sorted(inputs) if isinstance(inputs, Mapping) else None
        raise DcatError(f"batch['inputs'] has no modality {modality!r} (has {found})")
    return inputs[modality]


class UnimodalTask(nn.Module):
    """Cross-entropy on one modality: the unimodal baseline (and how sources are trained).

    Args:
        model: The modality's network.
        modality: Its key in ``batch["inputs"]``.
        label_smoothing: Passed to :func:`torch.nn.functional.cross_entropy`.
        augment: Applied to the input in training mode only (e.g.
            :class:`dcat.data.augment.InertialAugment`); ``None``: none.
    """

    def __init__(
        self,
        model: ModalityNet,
        modality: str,
        *,
        label_smoothing: float = 0.0,
        augment: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.target = model
        self.modality = modality
        self.label_smoothing = label_smoothing
        self.augment = augment
        self.epoch = 0  # the training epoch, set by the engine (read by no unimodal loss)

    def predict(self, batch: Mapping) -> Tensor:
        """Target logits ``(B, num_classes)``."""
        return self.target(_input(batch, self.modality))[0]

    def required_modalities(self) -> list[str]:
        """The ``batch["inputs"]`` keys that ``forward`` reads."""
        return [self.modality]

    def forward(self, batch: Mapping) -> dict[str, Tensor]:
        """Returns ``{"loss", "logits", "ce"}``, and ``"aux_ce"`` for a network with an
        auxiliary head (added to the loss)."""
        labels = _labels(batch)
        output = self.target.forward_all(_augmented(self, batch))
        ce = labelled_cross_entropy(output.logits, labels, label_smoothing=self.label_smoothing)
        out = {"logits": output.logits, "ce": ce}
        aux = _aux_ce(output, labels, self.label_smoothing, out)
        out["loss"] = ce if aux is None else ce + aux
        return out


def _augmented(task: UnimodalTask | TransferTask, batch: Mapping) -> Tensor:
    """The target's input, augmented in training mode (sources always see it clean)."""
    x = _input(batch, task.modality)
    return task.augment(x) if task.augment is not None and task.training else x


def _aux_ce(
    output: ModalityOutput, labels: Tensor, smoothing: float, out: dict[str, Tensor]
) -> Tensor | None:
    """The auxiliary head's cross-entropy (also stored as ``out["aux_ce"]``), or ``None``.

    The auxiliary head classifies the pooled attention output, so that the attention of a
    network whose main head bypasses it (``attention="side"``) still learns class information.
    """
    if output.aux_logits is None:
        return None
    aux = labelled_cross_entropy(output.aux_logits, labels, label_smoothing=smoothing)
    out["aux_ce"] = aux
    return aux


@dataclass
class SourceSpec:
    """One frozen source of a :class:`TransferTask` and how its knowledge is transferred.

    Attributes:
        name: Name of the source, used in loss keys (``"ca/<name>"``); unique within a task.
        model: The trained source network; it is frozen by the task. ``None`` for a method
            that learns from the source's samples, not a network (``"virtual"``).
        modality: Its key in ``batch["inputs"]`` (default: ``name``).
        method: A registered transfer method (:func:`dcat.training.methods.list_methods`):
            ``"dcat"`` (cross-attention loss), or a peer baseline: ``"logit_kd"``,
            ``"feature"``, ``"contrastive"``.
        weight: ``λ_s`` (``α`` for distillation): the loss adds ``weight · L_s``; ``≥ 0``.
        options: The method's options (see its class's ``options``; defaults fill the rest).
        mcma: Shorthand for ``options["mcma"]`` (D-CAT's rule: ``"correct"``, ``"confident"``
            or ``"none"``; ``True``/``False`` mean ``"correct"``/``"none"``).
        temperature: Shorthand for ``options["temperature"]`` (distillation ``T``, InfoNCE ``τ``).
        projection_dim: Shorthand for ``options["projection_dim"]`` (contrastive).
        loss_method: Shorthand for ``options["loss_method"]`` (D-CAT: ``"auto"``, ``"gram"``,
            ``"materialize"``).

    The shorthands apply to the methods that have such an option and are ignored by the others.
    """

    name: str
    model: ModalityNet | None
    modality: str | None = None
    method: str = "dcat"
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)
    mcma: bool | str | None = None
    temperature: float | None = None
    projection_dim: int | None = None
    loss_method: Literal["auto", "gram", "materialize"] | None = None

    @property
    def input_key(self) -> str:
        """Its key in ``batch["inputs"]``: ``modality``, or ``name`` when none is given."""
        return self.modality or self.name

    def __post_init__(self) -> None:
        try:
            cls = get_method(self.method)
        except DcatError as err:
            raise DcatError(f"source {self.name!r}: {err}") from None
        if not self.weight >= 0:
            raise DcatError(f"source {self.name!r}: weight (λ) must be ≥ 0, got {self.weight}")
        if self.model is None and cls.source_network:
            raise DcatError(
                f"source {self.name!r}: method {self.method!r} needs the source's network (model)"
            )
        if self.modality is None:
            self.modality = self.name
        legacy = {
            key: getattr(self, key)
            for key in _LEGACY_OPTIONS
            if getattr(self, key) is not None and key in cls.options
        }
        self.options = {**legacy, **self.options}


class TransferTask(nn.Module):
    """A trainable target trained with one or more frozen sources: ``L = CE + Σ_s w_s · L_s``.

    With one ``"dcat"`` source and ``weight = 1`` this is the paper's objective (Eq. 19); several
    sources are our extension (the paper's future work), and the peers' baselines share the same
    interface so a comparison is one configuration.

    Sources are put in eval mode with ``requires_grad=False`` and stay in eval mode when the
    task's :meth:`train` is called. Learned projections of the ``feature`` and ``contrastive``
    baselines belong to the task (trained, never exported).

    Args:
        target: The target network (trained).
        modality: The target's key in ``batch["inputs"]``.
        sources: The frozen sources.
        label_smoothing: Passed to the cross-entropy.
        eps: Norm floor of the cross-attention loss.
        augment: Applied to the target's input in training mode only; ``None``: none.

    Unlabelled samples (label :data:`~dcat.nn.labels.UNLABELLED`) reach only the methods that
    learn without labels; :attr:`partly_labelled` says whether batches may hold any (``None``,
    the default: each batch is looked at).

    Output of ``forward``: ``loss``, ``logits``, ``ce``; per source ``"<comp>/<name>"`` with
    ``comp`` from :data:`METHODS` (unweighted), per component the sum over its sources
    (``"ca"``, ``"kd"``, …), and for D-CAT sources ``"mcma_frac/<name>"``, the fraction aligned.
    """

    def __init__(
        self,
        target: ModalityNet,
        modality: str,
        sources: Sequence[SourceSpec],
        *,
        label_smoothing: float = 0.0,
        eps: float = DEFAULT_EPS,
        augment: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.augment = augment
        if not sources:
            raise DcatError("a TransferTask needs at least one source; use UnimodalTask otherwise")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise DcatError(f"source names must be unique, got {names}")
        self.target = target
        self.modality = modality
        self.specs = list(sources)
        self.label_smoothing = label_smoothing
        self.eps = eps
        # the frozen networks; a method that learns from the source's samples has none
        self.sources = nn.ModuleDict({s.name: s.model for s in sources if s.model is not None})
        # each source's method, with the heads it trains (projections: never exported)
        self.methods = nn.ModuleDict()
        for spec in self.specs:
            cls = get_method(spec.method)
            options = dict(spec.options)
            if "eps" in cls.options:
                options.setdefault("eps", eps)
            self.methods[spec.name] = cls(spec.model, target, name=spec.name, **options)
        for model in self.sources.values():
            model.requires_grad_(False)
            model.eval()
        self._caches: dict[str, SourceCache] = {}
        # whether training batches hold unlabelled samples: True / False when the data is known
        # (the engine sets it), None to look at each batch
        self.partly_labelled: bool | None = None
        # the training epoch (set by the engine each epoch): methods that pretrain read it
        self.epoch = 0

    def train(self, mode: bool = True) -> TransferTask:
        """Set training mode on the target and projections; sources always stay in eval mode."""
        super().train(mode)
        for model in self.sources.values():
            model.eval()
        return self

    def attach_cache(self, name: str, cache: SourceCache | None) -> None:
        """Serve source ``name`` from ``cache`` (rows = ``batch["index"]``); ``None`` detaches."""
        self.source(name)  # a source with a network, or the error naming those there are
        if cache is None:
            self._caches.pop(name, None)
        else:
            self._caches[name] = cache

    def cached(self, name: str) -> bool:
        """Whether source ``name`` is served from a cache."""
        return name in self._caches

    def cache(self, name: str) -> SourceCache | None:
        """The cache serving source ``name``, if any."""
        return self._caches.get(name)

    def required_modalities(self) -> list[str]:
        """The ``batch["inputs"]`` keys that ``forward`` reads: the target's and those of the
        sources not served from a cache."""
        needed = [self.modality] + [
            s.input_key for s in self.specs if self._reads_samples(s) or not self.cached(s.name)
        ]
        return list(dict.fromkeys(needed))

    def _reads_samples(self, spec: SourceSpec) -> bool:
        # the raw samples, or a network run on them: a cache serves only "outputs"
        return bool(self.method(spec.name).inputs & {"samples", "network"})

    def method(self, name: str) -> TransferMethod:
        """The method of source ``name``, with the heads it trains."""
        method = self.methods[name]
        assert isinstance(method, TransferMethod)
        return method

    def source(self, name: str) -> ModalityNet:
        """The frozen network of source ``name``.

        Raises:
            DcatError: The source has no network (its method reads samples only).
        """
        if name not in self.sources:
            raise DcatError(f"no source network named {name!r}; they are {list(self.sources)}")
        model = self.sources[name]
        assert isinstance(model, ModalityNet)
        return model

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters of the target and the baselines' projections."""
        return [p for p in self.parameters() if p.requires_grad]

    def predict(self, batch: Mapping) -> Tensor:
        """Target logits ``(B, num_classes)``: the target alone, as deployed."""
        return self.target(_input(batch, self.modality))[0]

    def source_outputs(self, spec: SourceSpec, batch: Mapping) -> SourceOutputs:
        """The frozen source's outputs for this batch, from its cache or by running it."""
        if spec.name in self._caches:
            index = batch.get("index")
            if not isinstance(index, Tensor):
                raise DcatError("a cached source needs batch['index'] (the samples' positions)")
            return self._caches[spec.name].lookup(index, device=_labels(batch).device)
        with torch.no_grad():
            out = self.source(spec.name).forward_all(_input(batch, spec.input_key))
        k, _, v = out.kqv
        return SourceOutputs(k, v, out.logits, out.embedding)

    def _labelled_only(self, methods: list[TransferMethod], labels: Tensor) -> Tensor | None:
        """``(B,)`` the labelled samples, when a method cannot learn from the unlabelled ones
        and the batch may hold some; else ``None`` (the whole batch for every method)."""
        if all(m.takes_unlabelled for m in methods) or self.partly_labelled is False:
            return None
        labelled = labels != UNLABELLED
        # a data set known to hold unlabelled samples skips the check (a host sync on a GPU)
        return labelled if self.partly_labelled or not bool(labelled.all()) else None

    def method_batch(
        self, spec: SourceSpec, batch: Mapping, target: ModalityOutput, labels: Tensor
    ) -> TransferBatch:
        """What source ``spec``'s method reads of this batch: the target's side, and from the
        source exactly what its method declares (:attr:`TransferMethod.inputs`)."""
        inputs = self.method(spec.name).inputs
        return TransferBatch(
            target=target,
            labels=labels,
            net=self.target,
            inputs=_input(batch, self.modality),
            augment=self.augment if self.training else None,
            epoch=self.epoch,
            outputs=self.source_outputs(spec, batch) if "outputs" in inputs else None,
            samples=_input(batch, spec.input_key) if "samples" in inputs else None,
            network=self.source(spec.name) if "network" in inputs else None,
        )

    def forward(self, batch: Mapping) -> dict[str, Tensor]:
        """Compute the objective; see the class docstring for the keys."""
        labels = _labels(batch)
        target = self.target.forward_all(_augmented(self, batch))
        ce = labelled_cross_entropy(target.logits, labels, label_smoothing=self.label_smoothing)
        out: dict[str, Tensor] = {"logits": target.logits, "ce": ce}
        aux = _aux_ce(target, labels, self.label_smoothing, out)
        loss = ce if aux is None else ce + aux
        methods = [self.method(spec.name) for spec in self.specs]
        if self.training and any(m.silences_real(self.epoch) for m in methods):
            loss = loss * 0.0  # pretraining on other data: the target's own labels wait
        labelled = self._labelled_only(methods, labels)
        for spec, method in zip(self.specs, methods, strict=True):
            seen = self.method_batch(spec, batch, target, labels)
            if labelled is not None and not method.takes_unlabelled:
                seen = seen.rows(labelled)
            terms = method(seen)
            value = terms["loss"]
            for key, extra in terms.items():
                if key != "loss":
                    out[f"{key}/{spec.name}"] = extra
            component = method.component
            out[f"{component}/{spec.name}"] = value
            out[component] = out[component] + value if component in out else value
            loss = loss + spec.weight * value
        out["loss"] = loss
        return out
