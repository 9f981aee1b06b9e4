"""Training objectives as plain ``nn.Module``s that return a dict of losses (timm/open_clip style).

Every task's ``forward(batch)`` takes the batch format of :mod:`dcat.data`::

    {"inputs": {modality: Tensor (B, ...)}, "label": (B,) int64, "index": (B,) int64}

and returns ``{"loss", "logits", "ce", ...}``, so the same objective runs in the Lightning
engine or in a user's own loop. Nothing here imports a training framework.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcat.errors import DcatError
from dcat.nn.losses import (
    DEFAULT_EPS,
    contrastive_alignment_loss,
    cross_attention_distance,
    feature_alignment_loss,
    global_masked_mean,
    logit_distillation_loss,
    mcma_mask,
    select_samples,
)
from dcat.nn.model import ModalityNet
from dcat.training.cache import SourceCache, SourceOutputs

__all__ = ["METHODS", "SourceSpec", "TransferTask", "UnimodalTask"]

TransferMethod = Literal["dcat", "logit_kd", "feature", "contrastive"]
METHODS: dict[str, str] = {
    "dcat": "ca",  # D-CAT cross-attention loss (Daher et al., ICRA 2026)
    "logit_kd": "kd",  # Hinton et al., 2015
    "feature": "feat",  # FitNets-style embedding regression, Romero et al., 2015
    "contrastive": "nce",  # symmetric InfoNCE, Radford et al., 2021 / Deldari et al., 2022
}
"""Transfer method → the name of its loss component in a task's output dict."""
_DEFAULT_TEMPERATURE = {"logit_kd": 4.0, "contrastive": 0.1}


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
    """

    def __init__(self, model: ModalityNet, modality: str, *, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.target = model
        self.modality = modality
        self.label_smoothing = label_smoothing

    def predict(self, batch: Mapping) -> Tensor:
        """Target logits ``(B, num_classes)``."""
        return self.target(_input(batch, self.modality))[0]

    def required_modalities(self) -> list[str]:
        """The ``batch["inputs"]`` keys that ``forward`` reads."""
        return [self.modality]

    def forward(self, batch: Mapping) -> dict[str, Tensor]:
        """Returns ``{"loss", "logits", "ce"}``."""
        logits = self.predict(batch)
        ce = F.cross_entropy(logits, _labels(batch), label_smoothing=self.label_smoothing)
        return {"loss": ce, "logits": logits, "ce": ce}


@dataclass
class SourceSpec:
    """One frozen source of a :class:`TransferTask` and how its knowledge is transferred.

    Attributes:
        name: Name of the source, used in loss keys (``"ca/<name>"``); unique within a task.
        model: The trained source network; it is frozen by the task.
        modality: Its key in ``batch["inputs"]`` (default: ``name``).
        method: ``"dcat"`` (cross-attention loss), or a peer baseline: ``"logit_kd"``,
            ``"feature"``, ``"contrastive"``.
        weight: ``λ_s`` (``α`` for distillation): the loss adds ``weight · L_s``; ``≥ 0``.
        mcma: D-CAT only: align only samples the source classifies correctly.
        temperature: Distillation ``T`` (default 4) or InfoNCE ``τ`` (default 0.1).
        projection_dim: Contrastive projection width (default 128).
        loss_method: D-CAT only: ``"auto"``, ``"gram"`` or ``"materialize"``.
    """

    name: str
    model: ModalityNet
    modality: str | None = None
    method: TransferMethod = "dcat"
    weight: float = 1.0
    mcma: bool = True
    temperature: float | None = None
    projection_dim: int = 128
    loss_method: Literal["auto", "gram", "materialize"] = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise DcatError(
                f"source {self.name!r}: method must be one of {list(METHODS)}, got {self.method!r}"
            )
        if not self.weight >= 0:
            raise DcatError(f"source {self.name!r}: weight (λ) must be ≥ 0, got {self.weight}")
        if self.modality is None:
            self.modality = self.name
        if self.temperature is None:
            self.temperature = _DEFAULT_TEMPERATURE.get(self.method, 1.0)
        if self.temperature <= 0:
            raise DcatError(
                f"source {self.name!r}: temperature must be positive, got {self.temperature}"
            )


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
    ) -> None:
        super().__init__()
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
        self.sources = nn.ModuleDict({s.name: s.model for s in sources})
        self.projections = nn.ModuleDict()
        for spec in self.specs:
            if spec.method == "dcat" and spec.model.d_out != target.d_out:
                raise DcatError(
                    f"source {spec.name!r} has d_out={spec.model.d_out} but the target has "
                    f"d_out={target.d_out}; the cross-attention loss needs equal widths"
                )
            if spec.method in ("dcat", "logit_kd") and spec.model.num_classes != target.num_classes:
                raise DcatError(
                    f"source {spec.name!r} has {spec.model.num_classes} classes but the target has "
                    f"{target.num_classes}; it was trained on other classes"
                )
            if spec.method == "feature":
                self.projections[spec.name] = nn.Linear(target.d_out, spec.model.d_out)
            elif spec.method == "contrastive":
                self.projections[spec.name] = nn.ModuleDict(
                    {
                        "target": nn.Linear(target.d_out, spec.projection_dim),
                        "source": nn.Linear(spec.model.d_out, spec.projection_dim),
                    }
                )
        for model in self.sources.values():
            model.requires_grad_(False)
            model.eval()
        self._caches: dict[str, SourceCache] = {}

    def train(self, mode: bool = True) -> TransferTask:
        """Set training mode on the target and projections; sources always stay in eval mode."""
        super().train(mode)
        for model in self.sources.values():
            model.eval()
        return self

    def attach_cache(self, name: str, cache: SourceCache | None) -> None:
        """Serve source ``name`` from ``cache`` (rows = ``batch["index"]``); ``None`` detaches."""
        if name not in self.sources:
            raise DcatError(f"no source named {name!r}; sources are {list(self.sources)}")
        if cache is None:
            self._caches.pop(name, None)
        else:
            self._caches[name] = cache

    def cached(self, name: str) -> bool:
        """Whether source ``name`` is served from a cache."""
        return name in self._caches

    def required_modalities(self) -> list[str]:
        """The ``batch["inputs"]`` keys that ``forward`` reads: the target's and those of the
        sources not served from a cache."""
        needed = [self.modality] + [s.modality for s in self.specs if s.name not in self._caches]
        return list(dict.fromkeys(needed))

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
        model = self.sources[spec.name]
        with torch.no_grad():
            out = model.forward_all(_input(batch, spec.modality))
        k, _, v = out.kqv
        return SourceOutputs(k, v, out.logits, out.embedding)

    def forward(self, batch: Mapping) -> dict[str, Tensor]:
        """Compute the objective; see the class docstring for the keys."""
        labels = _labels(batch)
        target = self.target.forward_all(_input(batch, self.modality))
        ce = F.cross_entropy(target.logits, labels, label_smoothing=self.label_smoothing)
        out: dict[str, Tensor] = {"logits": target.logits, "ce": ce}
        loss = ce
        for spec in self.specs:
            source = self.source_outputs(spec, batch)
            component = METHODS[spec.method]
            if spec.method == "dcat":
                source_kqv, target_kqv = (source.keys, None, source.values), target.kqv
                mask = mcma_mask(source.logits, labels) if spec.mcma else None
                # unaligned samples add nothing, so on the CPU only the masked ones are
                # computed; on a GPU the row selection would cost a host sync: values are masked
                selected = mask is not None and not labels.is_cuda
                if selected:
                    source_kqv = select_samples(source_kqv, mask)
                    target_kqv = select_samples(target_kqv, mask)
                distances = cross_attention_distance(
                    source_kqv, target_kqv, method=spec.loss_method, eps=self.eps
                )
                value = global_masked_mean(distances, None if selected else mask)
                frac = (
                    mask.float().mean()
                    if mask is not None
                    else labels.new_ones((), dtype=torch.float32)
                )
                out[f"mcma_frac/{spec.name}"] = frac
            elif spec.method == "logit_kd":
                value = logit_distillation_loss(target.logits, source.logits, spec.temperature)
            elif spec.method == "feature":
                projected = self.projections[spec.name](target.embedding)
                value = feature_alignment_loss(projected, source.embedding)
            else:
                heads = self.projections[spec.name]
                value = contrastive_alignment_loss(
                    heads["target"](target.embedding),
                    heads["source"](source.embedding.to(target.embedding.dtype)),
                    spec.temperature,
                )
            out[f"{component}/{spec.name}"] = value
            out[component] = out[component] + value if component in out else value
            loss = loss + spec.weight * value
        out["loss"] = loss
        return out
