"""Logit distillation (Hinton, Vinyals, Dean: Distilling the Knowledge in a Neural Network,
2015): the target matches the source's softened class probabilities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor

from dcat.errors import DcatError
from dcat.nn.peer_losses import logit_kd_loss
from dcat.training.methods.registry import TransferBatch, TransferMethod, register_method

__all__ = ["LogitDistillation"]


@register_method("logit_kd")
class LogitDistillation(TransferMethod):
    """``T² · KL(p_T(source) ‖ p_T(target))`` (:func:`dcat.nn.peer_losses.logit_kd_loss`).

    Options:
        temperature: Softening temperature ``T > 0``.
    """

    label: ClassVar[str] = "Logit KD"
    component: ClassVar[str] = "kd"
    unlabelled: ClassVar[bool] = True
    reference: ClassVar[str] = "Hinton et al., 2015"
    same_classes: ClassVar[bool] = True
    options: ClassVar[Mapping[str, Any]] = {"temperature": 4.0}

    @classmethod
    def validate(cls, options: Mapping[str, Any], where: str) -> None:
        _positive_temperature(options, where)

    def forward(self, batch: TransferBatch) -> dict[str, Tensor]:
        """``{"loss"}``."""
        target, source = batch.target, batch.outputs
        return {"loss": logit_kd_loss(source.logits, target.logits, self.config["temperature"])}


def _positive_temperature(options: Mapping[str, Any], where: str) -> None:
    if "temperature" in options and not options["temperature"] > 0:
        raise DcatError(f"{where}: temperature must be positive, got {options['temperature']}")
