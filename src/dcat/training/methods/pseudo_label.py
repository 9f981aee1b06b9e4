"""Pseudo-labels (Lee: Pseudo-Label, ICML 2013 workshop; the confidence threshold as in FixMatch,
Sohn et al., NeurIPS 2020): the target learns the frozen source's confident predictions as
hard labels, the baseline any reviewer expects beside a distillation method."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor

from dcat.errors import DcatError
from dcat.training.methods.registry import TransferBatch, TransferMethod, register_method

__all__ = ["PseudoLabels"]


@register_method("pseudo_label")
class PseudoLabels(TransferMethod):
    """``Σ_i m_i · CE(z_i, ŷ_i) / max(1, Σ_i m_i)`` with ``ŷ_i = argmax p_i`` and
    ``m_i = [max p_i ≥ τ]``, ``p_i`` the source's softmax and ``z_i`` the target's logits.

    The mean runs over the samples kept, so the term's scale does not depend on how many the
    source is confident about; with none kept it is 0 (and so is its gradient).

    Options:
        threshold: ``τ`` in ``[0, 1]``; 0 keeps every sample (hard-label distillation).

    Returns from :meth:`forward` ``{"loss", "pl_frac"}``: the term and the fraction of the
    batch kept.
    """

    label: ClassVar[str] = "Pseudo-labels"
    component: ClassVar[str] = "pl"
    unlabelled: ClassVar[bool] = True
    reference: ClassVar[str] = "Lee, 2013; threshold as in Sohn et al. (FixMatch), 2020"
    same_classes: ClassVar[bool] = True
    options: ClassVar[Mapping[str, Any]] = {"threshold": 0.7}

    @classmethod
    def validate(cls, options: Mapping[str, Any], where: str) -> None:
        threshold = options.get("threshold", cls.options["threshold"])
        if not 0 <= threshold <= 1:
            raise DcatError(f"{where}: threshold must be in [0, 1], got {threshold}")

    def forward(self, batch: TransferBatch) -> dict[str, Tensor]:
        """``{"loss", "pl_frac"}`` for a batch: ``logits`` ``(B, K)`` of both sides."""
        probabilities = batch.outputs.logits.detach().float().softmax(dim=-1)
        confidence, labels = probabilities.max(dim=-1)
        # a mask, not a row selection: no host sync on a GPU
        kept = (confidence >= self.config["threshold"]).float()
        ce = F.cross_entropy(batch.target.logits.float(), labels, reduction="none")
        loss = (ce * kept).sum() / kept.sum().clamp_min(1.0)
        return {"loss": loss, "pl_frac": kept.mean()}
