"""Virtual samples: the target also learns from paired samples synthesised from the source
modality (e.g. virtual IMU windows from a skeleton, :mod:`dcat.data.virtual`).

After IMUTube (H. Kwon et al., Proc. ACM IMWUT 4(3), 2020), which trains inertial activity
classifiers on accelerometry synthesised from 3-D poses. Unlike the other methods the source
is data, not a frozen network: no source model is trained or loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcat.errors import DcatError
from dcat.nn.model import ModalityNet
from dcat.training.methods.registry import TransferBatch, TransferMethod, register_method

__all__ = ["VirtualSamples"]

_MAPPINGS = ("none", "linear")


@register_method("virtual")
class VirtualSamples(TransferMethod):
    """Cross-entropy of the target on the virtual twin of each training sample.

    With ``v`` the virtual sample ``(B, C, T)`` of the source modality (same shape as the
    target's input ``x``), ``g`` the mapping and ``f`` the target network::

        L = CE(f(aug(g(v))), y)                        mapping "none": g = identity
        L = CE(f(aug(g(v))), y) + ‖g(v) − x‖² / (C T)  mapping "linear"

    The linear mapping ``g(v) = W v + b`` (a 1×1 convolution over channels, started at the
    identity) is learned on the training pairs: the second term pulls each mapped virtual
    window towards its real twin, a virtual → real calibration in the spirit of IMUTube's
    distribution matching. ``aug`` is the target's own training augmentation (rotation, scaling,
    …), so virtual samples are augmented exactly as real ones. ``λ`` (the transfer's weight)
    weights virtual samples against real ones: 1 mixes them 1:1, below 1 weights them down.
    With ``pretrain = P > 0`` the first ``P`` epochs train on the virtual samples alone (the
    real samples' cross-entropy is off), then on both: pretraining on virtual data and
    fine-tuning on real data, as IMUTube's follow-ups do.

    Options:
        mapping: ``"none"`` or ``"linear"``.
        pretrain: Epochs of virtual-only training at the start (``0``: none).
    """

    label: ClassVar[str] = "Virtual samples"
    component: ClassVar[str] = "virt"
    reference: ClassVar[str] = "Kwon et al., IMUTube, IMWUT 2020"
    options: ClassVar[Mapping[str, Any]] = {"mapping": "none", "pretrain": 0}
    inputs: ClassVar[frozenset[str]] = frozenset({"samples"})

    def __init__(
        self, source: ModalityNet | None, target: ModalityNet, *, name: str, **options: Any
    ) -> None:
        super().__init__(source, target, name=name, **options)
        self.mapping: nn.Conv1d | None = None
        if self.config["mapping"] == "linear":
            channels = getattr(target.encoder, "dcat_spec", {}).get("in_channels")
            if not isinstance(channels, int):
                raise DcatError(
                    f"source {name!r}: mapping 'linear' needs a target encoder built by "
                    "create_encoder (its in_channels sizes the mapping)"
                )
            mapping = nn.Conv1d(channels, channels, 1)
            assert mapping.bias is not None  # a Conv1d has a bias by default
            with torch.no_grad():
                mapping.weight.copy_(torch.eye(channels).unsqueeze(-1))
                mapping.bias.zero_()
            self.mapping = mapping

    @classmethod
    def validate(cls, options: Mapping[str, Any], where: str) -> None:
        if "mapping" in options and options["mapping"] not in _MAPPINGS:
            raise DcatError(
                f"{where}: mapping must be one of {list(_MAPPINGS)}, got {options['mapping']!r}"
            )
        if options.get("pretrain", 0) < 0:
            raise DcatError(f"{where}: pretrain must be ≥ 0 epochs, got {options['pretrain']}")

    @classmethod
    def check_data(
        cls, source: tuple[str, tuple[int, ...]], target: tuple[str, tuple[int, ...]]
    ) -> None:
        """The virtual samples must have the target's shape."""
        if source[1] != target[1]:
            raise DcatError(
                f"config: transfers: {source[0]!r} gives its samples to {target[0]!r} (method "
                f"{cls.name!r}), so it needs the target's shape {target[1]}, got {source[1]}"
            )

    def silences_real(self, epoch: int) -> bool:
        """True in the first ``pretrain`` epochs."""
        return epoch < self.config["pretrain"]

    def forward(self, batch: TransferBatch) -> dict[str, Tensor]:
        """The term of one batch, from ``batch.samples`` ``(B, C, T)``, the virtual samples
        (the source modality's input), and their real twins ``batch.inputs`` ``(B, C, T)``
        (the target's clean input), run through ``batch.net`` with ``batch.augment``.

        Returns:
            ``{"loss"}``, plus ``"virt_ce"`` and, with a linear mapping, ``"virt_map"``.

        Raises:
            DcatError: The virtual and real samples differ in shape.
        """
        virtual, real = batch.samples, batch.inputs
        if virtual.shape != real.shape:
            raise DcatError(
                f"source {self.source_name!r}: virtual samples {tuple(virtual.shape)} must have "
                f"the target's shape {tuple(real.shape)}"
            )
        mapped = virtual if self.mapping is None else self.mapping(virtual)
        inputs = batch.augment(mapped) if batch.augment is not None else mapped
        ce = F.cross_entropy(batch.net(inputs)[0], batch.labels)
        out = {"virt_ce": ce.detach()}
        loss = ce
        if self.mapping is not None:
            fit = F.mse_loss(mapped, real)
            out["virt_map"] = fit.detach()
            loss = loss + fit
        out["loss"] = loss
        return out
