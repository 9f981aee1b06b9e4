"""``ModalityNet``: one sensor's classifier, encoder → self-attention → pool → head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, get_args

from torch import Tensor, nn

from dcat.errors import DcatError
from dcat.nn.attention import SelfAttention
from dcat.nn.encoders.registry import create_encoder

__all__ = ["AttentionPlacement", "ModalityNet", "ModalityOutput"]

AttentionPlacement = Literal["serial", "residual", "side", "none"]
"""Where the self-attention sits (see :class:`ModalityNet`); ``"none"`` has none."""


class ModalityOutput(NamedTuple):
    """Everything one forward pass of a :class:`ModalityNet` produces.

    Attributes:
        logits: ``(B, num_classes)``.
        kqv: ``(K, Q, V)``, each ``(B, S, d_out)``; ``(B, 0, d_out)`` (empty) for a network
            without attention.
        embedding: The pooled features the head classifies, before dropout,
            ``(B, embedding_dim)``.
        aux_logits: The auxiliary head's logits on the pooled attention output
            ``(B, num_classes)``, or ``None`` without one.
    """

    logits: Tensor
    kqv: tuple[Tensor, Tensor, Tensor]
    embedding: Tensor
    aux_logits: Tensor | None = None


class ModalityNet(nn.Module):
    """A unimodal classifier whose attention statistics D-CAT can align.

    The encoder maps ``x`` to ``E`` ``(B, S, d_model)``; the self-attention gives
    ``A`` ``(B, S, d_out)`` and ``(K, Q, V)``. ``attention`` places it:

    * ``"serial"`` (the paper's): ``mean_S(A) → dropout → linear → logits``;
    * ``"residual"``: pre-norm, ``H = P(E) + attention(LN(E))`` with ``P`` the identity when
      ``d_model == d_out`` and a linear map otherwise; ``mean_S(H) → dropout → linear``;
    * ``"side"``: the head classifies ``mean_S(E)``; the attention runs beside it only to give
      ``K, Q, V`` to the loss, which still shapes the encoder through ``W_K`` and ``W_V``;
    * ``"none"``: no attention, ``mean_S(E) → dropout → linear``: the plain classifier a user
      would train without dcat (the reports' reference). ``K, Q, V`` are empty, so it can be
      neither side of D-CAT's loss.

    With ``aux_head`` a second linear head classifies ``mean_S(A)`` (its logits are
    ``ModalityOutput.aux_logits``; the tasks add its cross-entropy), so that the attention of a
    ``"side"`` network, which gets no gradient from the main head, carries class information
    when the network later serves as a source.

    Args:
        encoder: Module mapping the modality's input to ``(B, S, d_model)``; must expose an
            integer attribute ``d_model`` (every registered encoder does).
        d_out: Attention width; a source and target must agree on it.
        num_classes: Number of classes.
        dropout: Dropout before the linear head.
        num_heads: Attention heads (1 in the paper).
        attention: ``"serial"``, ``"residual"``, ``"side"`` or ``"none"``.
        aux_head: Add the auxiliary head on the pooled attention output (not with ``"none"``).
    """

    def __init__(
        self,
        encoder: nn.Module,
        d_out: int = 512,
        num_classes: int = 2,
        dropout: float = 0.0,
        *,
        num_heads: int = 1,
        attention: AttentionPlacement = "serial",
        aux_head: bool = False,
    ) -> None:
        super().__init__()
        d_model = getattr(encoder, "d_model", None)
        if not isinstance(d_model, int) or d_model <= 0:
            raise DcatError(
                f"encoder {type(encoder).__name__} must expose a positive int attribute d_model, "
                f"got {d_model!r}"
            )
        if num_classes < 2:
            raise DcatError(f"num_classes must be at least 2, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise DcatError(f"dropout must be in [0, 1), got {dropout}")
        if attention not in get_args(AttentionPlacement):
            raise DcatError(
                f"attention must be one of {list(get_args(AttentionPlacement))}, got {attention!r}"
            )
        if attention == "none" and aux_head:
            raise DcatError("aux_head needs an attention to classify; attention is 'none'")
        self.encoder = encoder
        self.attention = (
            SelfAttention(d_model, d_out, num_heads=num_heads) if attention != "none" else None
        )
        self.placement = attention
        if attention == "residual":
            self.norm = nn.LayerNorm(d_model)
            self.skip = nn.Identity() if d_model == d_out else nn.Linear(d_model, d_out)
        self.embedding_dim = d_model if attention in ("side", "none") else d_out
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.embedding_dim, num_classes)
        self.aux_head = nn.Linear(d_out, num_classes) if aux_head else None
        self.d_out = d_out
        self.num_classes = num_classes
        self.num_heads = num_heads

    def architecture(self) -> dict[str, Any]:
        """A JSON-able description from which :meth:`from_architecture` rebuilds this network.

        Raises:
            DcatError: The encoder was not made by :func:`~dcat.nn.encoders.create_encoder`.
        """
        spec = getattr(self.encoder, "dcat_spec", None)
        if spec is None:
            raise DcatError(
                f"the encoder {type(self.encoder).__name__} was not built by create_encoder, "
                "so the network cannot be described for export; register it with "
                "@register_encoder and build it by name"
            )
        return {
            "encoder": spec["name"],
            "in_channels": spec["in_channels"],
            "encoder_options": dict(spec["options"]),
            "d_out": self.d_out,
            "num_classes": self.num_classes,
            "num_heads": self.num_heads,
            "dropout": self.dropout.p,
            "attention": self.placement,
            "aux_head": self.aux_head is not None,
        }

    # build-time options that do not change the weights and do not belong in a deployed model
    _BUILD_ONLY = ("weights", "compile")

    @classmethod
    def from_architecture(cls, architecture: Mapping[str, Any]) -> ModalityNet:
        """Build a (randomly initialised) network from :meth:`architecture`'s description.

        Local pretrained-weight paths and ``compile`` are dropped: the weights come from the
        checkpoint that is loaded next.
        """
        required = ("encoder", "in_channels", "encoder_options", "d_out", "num_classes")
        missing = [k for k in required if k not in architecture]
        if missing:
            raise DcatError(f"architecture description lacks {missing}")
        options = {
            k: v for k, v in architecture["encoder_options"].items() if k not in cls._BUILD_ONLY
        }
        encoder = create_encoder(architecture["encoder"], architecture["in_channels"], **options)
        return cls(
            encoder,
            d_out=architecture["d_out"],
            num_classes=architecture["num_classes"],
            dropout=architecture.get("dropout", 0.0),
            num_heads=architecture.get("num_heads", 1),
            # cards written before attention placements existed describe serial networks
            attention=architecture.get("attention", "serial"),
            aux_head=architecture.get("aux_head", False),
        )

    def forward_all(self, x: Tensor) -> ModalityOutput:
        """Run the network and return logits, ``(K, Q, V)`` and the pooled embedding.

        Args:
            x: The encoder's input, e.g. ``(B, C, T)`` for series encoders.

        Returns:
            :class:`ModalityOutput`.
        """
        embeddings = self.encoder(x)
        if self.attention is None:
            pooled = embeddings.mean(dim=1)
            empty = embeddings.new_zeros((embeddings.shape[0], 0, self.d_out))
            return ModalityOutput(self.head(self.dropout(pooled)), (empty, empty, empty), pooled)
        if self.placement == "residual":
            out, kqv = self.attention(self.norm(embeddings))
            features = self.skip(embeddings) + out
        else:
            out, kqv = self.attention(embeddings)
            features = embeddings if self.placement == "side" else out
        pooled = features.mean(dim=1)
        aux = self.aux_head(out.mean(dim=1)) if self.aux_head is not None else None
        return ModalityOutput(self.head(self.dropout(pooled)), kqv, pooled, aux)

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
        """The pooled embedding ``(B, embedding_dim)`` that feature-alignment baselines use."""
        return self.forward_all(x).embedding
