"""Decoupled Knowledge Distillation (Zhao et al., CVPR 2022): logit distillation split into the
target class's share and the distribution over the other classes, weighted separately."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor

from dcat.errors import DcatError
from dcat.nn.peer_losses import dkd_loss
from dcat.training.methods.logit_kd import _positive_temperature
from dcat.training.methods.registry import TransferBatch, TransferMethod, register_method

__all__ = ["DecoupledDistillation"]


@register_method("dkd")
class DecoupledDistillation(TransferMethod):
    """``(α · TCKD + β · NCKD) · T²`` (:func:`dcat.nn.peer_losses.dkd_loss`).

    With ``p = softmax(z/T)`` and ``t`` the labelled class (on an unlabelled sample, the
    source's predicted class), TCKD is the KL divergence of the
    source's binary distribution ``(p_t, 1 − p_t)`` from the target's, and NCKD that of the
    distributions over the non-target classes (the target class masked out before the
    softmax); both the batch mean. Reference: Zhao, Cui, Song, Qiu, Liang, Decoupled Knowledge
    Distillation, CVPR 2022. Needs the same classes in source and target.

    Options:
        alpha: Weight ``α ≥ 0`` of TCKD.
        beta: Weight ``β ≥ 0`` of NCKD.
        temperature: Softening temperature ``T > 0``.
    """

    label: ClassVar[str] = "DKD"
    component: ClassVar[str] = "dkd"
    unlabelled: ClassVar[bool] = True
    reference: ClassVar[str] = "Zhao et al., Decoupled Knowledge Distillation, CVPR 2022"
    same_classes: ClassVar[bool] = True
    options: ClassVar[Mapping[str, Any]] = {"alpha": 1.0, "beta": 8.0, "temperature": 4.0}

    @classmethod
    def validate(cls, options: Mapping[str, Any], where: str) -> None:
        _positive_temperature(options, where)
        for key in ("alpha", "beta"):
            if key in options and not options[key] >= 0:
                raise DcatError(f"{where}: {key} must be ≥ 0, got {options[key]}")

    def forward(self, batch: TransferBatch) -> dict[str, Tensor]:
        """``{"loss"}``."""
        target, source, labels = batch.target, batch.outputs, batch.labels
        value = dkd_loss(
            source.logits,
            target.logits,
            labels,
            alpha=self.config["alpha"],
            beta=self.config["beta"],
            temperature=self.config["temperature"],
        )
        return {"loss": value}
