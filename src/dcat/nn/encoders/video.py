"""Per-frame 2D-CNN video encoder on torchvision's ResNets: ``(B, F, C, H, W) → (B, F, d)``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from dcat.errors import DcatError
from dcat.nn.encoders.registry import register_encoder
from dcat.nn.weights import load_torch_file

__all__ = ["VideoEncoder"]

_RESNETS = {18: "resnet18", 34: "resnet34", 50: "resnet50", 101: "resnet101"}


@register_encoder("video")
class VideoEncoder(nn.Module):
    """Each frame through a ResNet trunk (no classifier), global-average-pooled to a vector.

    The paper's video encoder is ResNet-101 on 224 × 224 frames (Fig. 3); shallower depths are
    for small machines and tests. Frames become the attention sequence: ``S = F``.

    Args:
        in_channels: Channels per frame (3 RGB, 1 greyscale or depth, ...). With a checkpoint
            made for 3 channels and another count, the first convolution's weights are averaged
            over RGB and repeated.
        depth: ResNet depth, one of 18, 34, 50, 101.
        d_model: Output width; ``None`` keeps the trunk's (512 for 18/34, 2048 for 50/101),
            otherwise a linear projection follows.
        weights: Optional path of a local torchvision ResNet ``state_dict`` file (loaded with
            ``weights_only=True``; nothing is downloaded).
        channels_last: Run the trunk in channels-last memory format (faster on GPUs).
        compile: Wrap the trunk in :func:`torch.compile` (pays off on GPUs for long runs).

    Input frames are uint8 in ``[0, 255]`` or float in ``[0, 1]``; they are standardised on
    the device (ImageNet mean and std for 3 channels, 0.5 / 0.25 otherwise), so loaders can
    move compact uint8 frames.

    Shape:
        input ``(B, F, C, H, W)``, output ``(B, F, d_model)``.
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        in_channels: int,
        *,
        depth: int = 18,
        d_model: int | None = None,
        weights: str | Path | None = None,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if depth not in _RESNETS:
            raise DcatError(f"depth must be one of {sorted(_RESNETS)}, got {depth}")
        if in_channels <= 0:
            raise DcatError(f"in_channels must be positive, got {in_channels}")
        import torchvision  # here: importing it costs a second at every start of dcat

        trunk = getattr(torchvision.models, _RESNETS[depth])(weights=None)
        if weights is not None:
            state = load_torch_file(weights)
            trunk.load_state_dict(state)
        if in_channels != 3:
            old = trunk.conv1
            trunk.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            with torch.no_grad():
                trunk.conv1.weight.copy_(
                    old.weight.mean(1, keepdim=True).repeat(1, in_channels, 1, 1)
                )
        features = trunk.fc.in_features
        trunk.fc = nn.Identity()
        if channels_last:
            # the weights too: with only the input channels-last, cuDNN converts on every call
            trunk = trunk.to(memory_format=torch.channels_last)
        self.trunk = trunk
        mean, std = (
            ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
            if in_channels == 3
            else ([0.5] * in_channels, [0.25] * in_channels)
        )
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.project = (
            nn.Identity() if d_model in (None, features) else nn.Linear(features, d_model)
        )
        self.in_channels = in_channels
        self.d_model = int(d_model or features)
        self.channels_last = channels_last
        # compiled together with the standardisation, which Inductor then fuses into one pass
        self._frames = torch.compile(self._frame_features) if compile else self._frame_features

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``(B, F, C, H, W)`` into ``(B, F, d_model)``."""
        if x.ndim != 5 or x.shape[2] != self.in_channels:
            raise DcatError(
                f"VideoEncoder expects input of shape (B, F, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        batch, frames = x.shape[:2]
        features = self._frames(x.reshape(batch * frames, *x.shape[2:]))
        return self.project(features.reshape(batch, frames, -1))

    def _frame_features(self, flat: Tensor) -> Tensor:
        """``(N, C, H, W)`` frames (uint8 or float) → trunk features ``(N, features)``."""
        if flat.dtype == torch.uint8:
            flat = flat.float() / 255.0
        flat = (flat - self.mean) / self.std
        if self.channels_last:
            flat = flat.contiguous(memory_format=torch.channels_last)
        return self.trunk(flat)
