"""``ModalityNet``: one sensor's classifier, encoder → self-attention → pool → head."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from dcat.attention import SelfAttention

__all__ = ["ModalityNet", "ModalityOutput"]


class ModalityOutput(NamedTuple):
    """Everything one forward pass of a :class:`ModalityNet` produces.

    Attributes:
        logits: ``(B, num_classes)``.
        kqv: ``(K, Q, V)``, each ``(B, S, d_out)``.
        embedding: Mean-pooled attention output before dropout, ``(B, d_out)``.
    """

    logits: Tensor
    kqv: tuple[Tensor, Tensor, Tensor]
    embedding: Tensor


class ModalityNet(nn.Module):
    """A unimodal classifier whose attention statistics D-CAT can align.

    ``x --encoder--> (B, S, d_model) --SelfAttention--> (B, S, d_out) --mean over S--> dropout
    --> linear --> logits``.

    Args:
        encoder: Module mapping the modality's input to ``(B, S, d_model)``; must expose an
            integer attribute ``d_model`` (every registered encoder does).
        d_out: Attention width; a source and target must agree on it.
        num_classes: Number of classes.
        dropout: Dropout before the linear head.
        num_heads: Attention heads (1 in the paper).
    """

    def __init__(
        self,
        encoder: nn.Module,
        d_out: int = 512,
        num_classes: int = 2,
        dropout: float = 0.0,
        *,
        num_heads: int = 1,
    ) -> None:
        super().__init__()
        d_model = getattr(encoder, "d_model", None)
        if not isinstance(d_model, int) or d_model <= 0:
            raise ValueError(
                f"encoder {type(encoder).__name__} must expose a positive int attribute d_model, "
                f"got {d_model!r}"
            )
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.encoder = encoder
        self.attention = SelfAttention(d_model, d_out, num_heads=num_heads)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_out, num_classes)
        self.d_out = d_out
        self.num_classes = num_classes

    def forward_all(self, x: Tensor) -> ModalityOutput:
        """Run the network and return logits, ``(K, Q, V)`` and the pooled embedding.

        Args:
            x: The encoder's input, e.g. ``(B, C, T)`` for series encoders.

        Returns:
            :class:`ModalityOutput`.
        """
        embeddings = self.encoder(x)
        out, kqv = self.attention(embeddings)
        pooled = out.mean(dim=1)
        return ModalityOutput(self.head(self.dropout(pooled)), kqv, pooled)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """Classify.

        Args:
            x: The encoder's input, e.g. ``(B, C, T)``.

        Returns:
            ``logits`` ``(B, num_classes)`` and ``(K, Q, V)``, each ``(B, S, d_out)``.
        """
        output = self.forward_all(x)
        return output.logits, output.kqv

    def embed(self, x: Tensor) -> Tensor:
        """The pooled embedding ``(B, d_out)`` that feature-alignment baselines use."""
        return self.forward_all(x).embedding
