"""Contrastive alignment (symmetric InfoNCE; Radford et al., CLIP, 2021; Deldari et al., COCOA,
2022): the two modalities of a sample are pulled together, other samples pushed apart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

from dcat.errors import DcatError
from dcat.nn.model import ModalityNet
from dcat.nn.peer_losses import contrastive_loss
from dcat.training.methods.logit_kd import _positive_temperature
from dcat.training.methods.registry import TransferBatch, TransferMethod, register_method

__all__ = ["ContrastiveAlignment"]


@register_method("contrastive")
class ContrastiveAlignment(TransferMethod):
    """Symmetric InfoNCE of projected embeddings (:func:`~dcat.nn.peer_losses.contrastive_loss`).

    Options:
        temperature: ``τ > 0``.
        projection_dim: Width of the two projection heads.

    Heads: ``heads["target"]`` (``embedding_dim(target) → projection_dim``) and
    ``heads["source"]`` (``embedding_dim(source) → projection_dim``), trained with the target and
    never exported.
    """

    label: ClassVar[str] = "Contrastive"
    component: ClassVar[str] = "nce"
    unlabelled: ClassVar[bool] = True
    reference: ClassVar[str] = "Radford et al., 2021; Deldari et al., 2022"
    options: ClassVar[Mapping[str, Any]] = {"temperature": 0.1, "projection_dim": 128}

    def __init__(
        self, source: ModalityNet, target: ModalityNet, *, name: str, **options: Any
    ) -> None:
        super().__init__(source, target, name=name, **options)
        dim = self.config["projection_dim"]
        self.heads = nn.ModuleDict(
            {
                "target": nn.Linear(target.embedding_dim, dim),
                "source": nn.Linear(source.embedding_dim, dim),
            }
        )

    @classmethod
    def validate(cls, options: Mapping[str, Any], where: str) -> None:
        _positive_temperature(options, where)
        if options.get("projection_dim", 1) < 1:
            raise DcatError(
                f"{where}: projection_dim must be positive, got {options['projection_dim']}"
            )

    def forward(self, batch: TransferBatch) -> dict[str, Tensor]:
        """``{"loss"}``."""
        target, source = batch.target, batch.outputs
        embedding = target.embedding
        value = contrastive_loss(
            self.heads["source"](source.embedding.to(embedding.dtype)),
            self.heads["target"](embedding),
            self.config["temperature"],
        )
        return {"loss": value}
