"""Feature alignment (Romero et al.: FitNets, ICLR 2015): the target's projected embedding
regresses the source's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

from dcat.nn.model import ModalityNet
from dcat.nn.peer_losses import feature_loss
from dcat.training.methods.registry import TransferBatch, TransferMethod, register_method

__all__ = ["FeatureAlignment"]


@register_method("feature")
class FeatureAlignment(TransferMethod):
    """MSE between ``W · e_target`` and ``e_source`` (:func:`dcat.nn.peer_losses.feature_loss`).

    Heads: ``projection``, a linear map ``embedding_dim(target) → embedding_dim(source)``,
    trained with the target and never exported.
    """

    label: ClassVar[str] = "Feature align."
    component: ClassVar[str] = "feat"
    unlabelled: ClassVar[bool] = True
    reference: ClassVar[str] = "Romero et al., FitNets, 2015"
    options: ClassVar[Mapping[str, Any]] = {}

    def __init__(
        self, source: ModalityNet, target: ModalityNet, *, name: str, **options: Any
    ) -> None:
        super().__init__(source, target, name=name, **options)
        self.projection = nn.Linear(target.embedding_dim, source.embedding_dim)

    def forward(self, batch: TransferBatch) -> dict[str, Tensor]:
        """``{"loss"}``."""
        target, source = batch.target, batch.outputs
        return {"loss": feature_loss(source.embedding, self.projection(target.embedding))}
