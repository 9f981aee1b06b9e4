"""Self-attention that also hands back its keys, queries and values for the D-CAT loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from dcat.errors import DcatError

__all__ = ["SelfAttention"]


class SelfAttention(nn.Module):
    """Scaled dot-product self-attention returning ``(out, (K, Q, V))`` (paper Eq. 1–2).

    ``K = E W_K``, ``Q = E W_Q``, ``V = E W_V`` with ``W_* ∈ R^{d_model × d_out}`` and
    ``out = softmax(Q Kᵀ / √d_head) V``, through
    :func:`torch.nn.functional.scaled_dot_product_attention`. Single-head by default as in the
    paper; with ``num_heads > 1`` the heads split ``d_out`` and ``K, Q, V`` are still returned
    whole, ``(B, S, d_out)``, which is what the loss aligns.

    Args:
        d_model: Width of the encoder's embeddings ``E``.
        d_out: Width of keys, queries and values (the paper's attention size, 512). Must be the
            same for a source and a target whose statistics are aligned.
        num_heads: Number of heads; must divide ``d_out``.
        bias: Whether the projections have a bias.
        dropout: Attention-weight dropout, applied in training only.
    """

    def __init__(
        self,
        d_model: int,
        d_out: int = 512,
        *,
        num_heads: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if d_model <= 0 or d_out <= 0:
            raise DcatError(f"d_model and d_out must be positive, got {d_model} and {d_out}")
        if num_heads <= 0 or d_out % num_heads:
            raise DcatError(f"num_heads ({num_heads}) must be positive and divide d_out ({d_out})")
        if not 0.0 <= dropout < 1.0:
            raise DcatError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model = d_model
        self.d_out = d_out
        self.num_heads = num_heads
        self.dropout = dropout
        self.key = nn.Linear(d_model, d_out, bias=bias)
        self.query = nn.Linear(d_model, d_out, bias=bias)
        self.value = nn.Linear(d_model, d_out, bias=bias)

    def _split(self, x: Tensor) -> Tensor:
        b, s, _ = x.shape
        return x.view(b, s, self.num_heads, self.d_out // self.num_heads).transpose(1, 2)

    def forward(self, embeddings: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """Attend over the sequence.

        Args:
            embeddings: ``(B, S, d_model)``.

        Returns:
            ``out`` ``(B, S, d_out)`` and the tuple ``(K, Q, V)``, each ``(B, S, d_out)``.
        """
        if embeddings.ndim != 3 or embeddings.shape[-1] != self.d_model:
            raise DcatError(
                f"embeddings must have shape (B, S, {self.d_model}), got {tuple(embeddings.shape)}"
            )
        k = self.key(embeddings)
        q = self.query(embeddings)
        v = self.value(embeddings)
        out = F.scaled_dot_product_attention(
            self._split(q),
            self._split(k),
            self._split(v),
            dropout_p=self.dropout if self.training else 0.0,
        )
        out = out.transpose(1, 2).reshape(k.shape)
        return out, (k, q, v)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_out={self.d_out}, num_heads={self.num_heads}"
