"""``ModalityNet``: one sensor's classifier, encoder → self-attention → pool → head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from torch import Tensor, nn

from dcat.errors import DcatError
from dcat.nn.attention import SelfAttention
from dcat.nn.encoders.registry import create_encoder

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
            raise DcatError(
                f"encoder {type(encoder).__name__} must expose a positive int attribute d_model, "
                f"got {d_model!r}"
            )
        if num_classes < 2:
            raise DcatError(f"num_classes must be at least 2, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise DcatError(f"dropout must be in [0, 1), got {dropout}")
        self.encoder = encoder
        self.attention = SelfAttention(d_model, d_out, num_heads=num_heads)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_out, num_classes)
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
        )

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
