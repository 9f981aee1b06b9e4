"""Relational Knowledge Distillation (Park et al., CVPR 2019): the target's pooled embeddings
keep the source's pairwise distances and triplet angles within a batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor

from dcat.errors import DcatError
from dcat.nn.relational_losses import rkd_loss
from dcat.training.methods.registry import TransferBatch, TransferMethod, register_method

__all__ = ["RelationalDistillation"]


@register_method("rkd")
class RelationalDistillation(TransferMethod):
    """``λ_D · L_D + λ_A · L_A`` (:func:`~dcat.nn.relational_losses.rkd_loss`).

    ``L_D`` is the mean smooth-L1 between the two embeddings' pairwise distances, each divided
    by its batch's mean distance; ``L_A`` the mean smooth-L1 between the cosines
    ``⟨e_ij, e_kj⟩`` of every triplet of distinct samples, ``e_ij = normalize(x_i − x_j)``.
    Reference: Park, Kim, Lu, Cho, Relational Knowledge Distillation, CVPR 2019. Only relations
    are compared, so the two embedding widths may differ and no head is trained.

    Options:
        distance_weight: ``λ_D ≥ 0``.
        angle_weight: ``λ_A ≥ 0`` (not both 0).
    """

    label: ClassVar[str] = "RKD"
    component: ClassVar[str] = "rkd"
    unlabelled: ClassVar[bool] = True
    reference: ClassVar[str] = "Park et al., Relational Knowledge Distillation, CVPR 2019"
    options: ClassVar[Mapping[str, Any]] = {"distance_weight": 1.0, "angle_weight": 2.0}

    @classmethod
    def validate(cls, options: Mapping[str, Any], where: str) -> None:
        for key in ("distance_weight", "angle_weight"):
            if key in options and not options[key] >= 0:
                raise DcatError(f"{where}: {key} must be ≥ 0, got {options[key]}")
        # validate() sees only the options a config sets: the defaults fill the rest
        merged = {**cls.options, **options}
        if merged["distance_weight"] == 0 and merged["angle_weight"] == 0:
            raise DcatError(
                f"{where}: distance_weight and angle_weight of method 'rkd' are both 0, which "
                "transfers nothing"
            )

    def forward(self, batch: TransferBatch) -> dict[str, Tensor]:
        """``{"loss"}``."""
        target, source = batch.target, batch.outputs
        value = rkd_loss(
            source.embedding,
            target.embedding,
            distance_weight=self.config["distance_weight"],
            angle_weight=self.config["angle_weight"],
        )
        return {"loss": value}
