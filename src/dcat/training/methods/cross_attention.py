"""D-CAT: align the source's and the target's self-attention statistics, per sample
(docs/design.md, "The loss"; Daher, Wang, Mielle, ICRA 2026)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from dcat.errors import DcatError
from dcat.nn.losses import (
    DEFAULT_EPS,
    cross_attention_distance,
    global_masked_mean,
    mcma_mask,
    select_samples,
)
from dcat.nn.model import ModalityNet
from dcat.training.methods.registry import TransferBatch, TransferMethod, register_method

__all__ = ["MCMA_RULES", "CrossAttentionTransfer"]

MCMA_RULES = ("correct", "confident", "none")
"""Which samples D-CAT aligns: those the source gets right, gets right confidently, or all."""


@register_method("dcat")
class CrossAttentionTransfer(TransferMethod):
    """The cross-attention loss ``mean_i ‖M_b,i/‖M_b,i‖ − M_a,i/‖M_a,i‖‖_F`` with ``M = Kᵀ V``.

    Options:
        mcma: Which samples are aligned (masked cross-modal alignment): ``"correct"``, those the
            source classifies correctly (the paper's MCMA); ``"confident"``, those it classifies
            correctly with a probability of the true class ≥ ``confidence``; ``"none"``, all
            (the paper's ablation). ``true``/``false`` mean ``"correct"``/``"none"``.
        confidence: The ``confident`` rule's threshold ``τ`` in ``(0, 1]``.
        loss_method: ``"auto"``, ``"gram"`` or ``"materialize"`` (equal values, different cost).
        eps: Norm floor of the loss (the task's ``eps`` unless set).
    """

    label: ClassVar[str] = "D-CAT"
    component: ClassVar[str] = "ca"
    reference: ClassVar[str] = "Daher, Wang, Mielle: D-CAT, ICRA 2026"
    same_classes: ClassVar[bool] = True  # MCMA compares the source's prediction with the label
    options: ClassVar[Mapping[str, Any]] = {
        "mcma": "correct",
        "confidence": 0.5,
        "loss_method": "auto",
        "eps": DEFAULT_EPS,
    }

    def __init__(
        self, source: ModalityNet, target: ModalityNet, *, name: str, **options: Any
    ) -> None:
        super().__init__(source, target, name=name, **options)
        for role, net in (("source", source), ("target", target)):
            if net.attention is None:
                raise DcatError(
                    f"the {role} network (source {name!r}) has no attention (attention: none); "
                    "D-CAT aligns attention statistics, so both networks need one"
                )
        if source.d_out != target.d_out:
            raise DcatError(
                f"source {name!r} has d_out={source.d_out} but the target has "
                f"d_out={target.d_out}; the cross-attention loss needs equal widths"
            )

    @classmethod
    def coerce(cls, name: str, value: Any) -> Any:
        if name == "mcma" and isinstance(value, bool):
            return "correct" if value else "none"
        return value

    @classmethod
    def validate(cls, options: Mapping[str, Any], where: str) -> None:
        rule = options.get("mcma", "correct")
        if rule not in MCMA_RULES:
            raise DcatError(f"{where}: mcma must be one of {list(MCMA_RULES)}, got {rule!r}")
        confidence = options.get("confidence", 0.5)
        if not 0 < confidence <= 1:
            raise DcatError(f"{where}: confidence must be in (0, 1], got {confidence}")
        method = options.get("loss_method", "auto")
        if method not in ("auto", "gram", "materialize"):
            raise DcatError(
                f"{where}: loss_method must be auto, gram or materialize, got {method!r}"
            )
        if not options.get("eps", DEFAULT_EPS) > 0:
            raise DcatError(f"{where}: eps must be positive, got {options['eps']}")

    @classmethod
    def variant(cls, options: Mapping[str, Any]) -> tuple[str, str]:
        # the threshold names a variant only where it is used
        if options.get("mcma", "correct") != "confident":
            options = {**options, "confidence": cls.options["confidence"]}
        # the paper's ablation keeps the names it has had since the first release
        if options.get("mcma", "correct") != "none":
            return super().variant(options)
        tag, label = super().variant({**options, "mcma": "correct"})
        return tag.replace("dcat", "dcat_no_mcma", 1), label.replace("D-CAT", "No MCMA", 1)

    @classmethod
    def learns_unlabelled(cls, options: Mapping[str, Any]) -> bool:
        """The ``confident`` and ``none`` rules need no label; ``correct`` does."""
        return options.get("mcma", cls.options["mcma"]) != "correct"

    def forward(self, batch: TransferBatch) -> dict[str, Tensor]:
        """``{"loss", "mcma_frac"}``: the loss and the fraction of samples aligned."""
        target, source, labels = batch.target, batch.outputs, batch.labels
        source_kqv: tuple[Tensor | None, ...] = (source.keys, None, source.values)
        target_kqv: tuple[Tensor | None, ...] = target.kqv
        rule = self.config["mcma"]
        confidence = self.config["confidence"] if rule == "confident" else None
        mask = mcma_mask(source.logits, labels, confidence=confidence) if rule != "none" else None
        # unaligned samples add nothing, so on the CPU only the masked ones are computed;
        # on a GPU the row selection would cost a host sync: values are masked instead
        selected = mask is not None and not labels.is_cuda
        square = source.square  # a cache's ‖K_aᵀV_a‖², not recomputed by the Gram path
        if selected and mask is not None:
            source_kqv = select_samples(source_kqv, mask)
            target_kqv = select_samples(target_kqv, mask)
            (square,) = select_samples((square,), mask)
        distances = cross_attention_distance(
            source_kqv, target_kqv, method=self.config["loss_method"], eps=self.config["eps"],
            source_square=square,
        )  # fmt: skip
        value = global_masked_mean(distances, None if selected else mask)
        frac = mask.float().mean() if mask is not None else labels.new_ones((), dtype=torch.float32)
        return {"loss": value, "mcma_frac": frac}
