"""Similarity-preserving distillation (Tung & Mori, ICCV 2019): samples similar to each other in
the source's pooled embedding stay similar in the target's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor

from dcat.nn.relational_losses import similarity_preserving_loss
from dcat.training.methods.registry import TransferBatch, TransferMethod, register_method

__all__ = ["SimilarityPreserving"]


@register_method("sp")
class SimilarityPreserving(TransferMethod):
    """``‖G̃_target − G̃_source‖_F² / B²`` of the pooled embeddings ``F``.

    ``G = F Fᵀ`` is the batch's ``B × B`` similarity matrix and ``G̃`` the same with every row
    L2-normalised (:func:`~dcat.nn.relational_losses.similarity_preserving_loss`). Reference:
    Tung & Mori, Similarity-Preserving Knowledge Distillation, ICCV 2019. The two embedding
    widths may differ; no head is trained.
    """

    label: ClassVar[str] = "SP"
    component: ClassVar[str] = "sp"
    unlabelled: ClassVar[bool] = True
    reference: ClassVar[str] = (
        "Tung & Mori, Similarity-Preserving Knowledge Distillation, ICCV 2019"
    )
    options: ClassVar[Mapping[str, Any]] = {}

    def forward(self, batch: TransferBatch) -> dict[str, Tensor]:
        """``{"loss"}``."""
        target, source = batch.target, batch.outputs
        return {"loss": similarity_preserving_loss(source.embedding, target.embedding)}
