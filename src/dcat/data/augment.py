"""Standard inertial augmentations: random rotation, scaling, jitter and time warp.

They follow Um et al., "Data Augmentation of Wearable Sensor Data for Parkinson's Disease
Monitoring using Convolutional Neural Networks" (ICMI 2017), the usual set for accelerometer
and gyroscope windows. A :class:`InertialAugment` runs on the trained model's input batch, in
training mode only, for the baseline and every transfer alike (it is never counted as
transfer); frozen sources always see clean inputs, so their caches stay valid.

Inputs arrive normalised, ``(x − shift) / scale`` per channel. A rotation is physical only on
the raw signal, so the module undoes the normalisation, rotates and scales there, and normalises
again; jitter is added in normalised units (a fraction of each channel's training std).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dcat.errors import DcatError

__all__ = ["InertialAugment", "random_rotations", "time_warp"]


def random_rotations(
    count: int, max_degrees: float, *, generator: torch.Generator | None = None
) -> Tensor:
    """``count`` rotation matrices ``(count, 3, 3)`` about uniformly random axes, by angles
    uniform in ``[−max_degrees, max_degrees]`` (Rodrigues' formula)."""
    axis = torch.randn(count, 3, generator=generator)
    axis = axis / axis.norm(dim=1, keepdim=True).clamp_min(1e-12)
    angle = (torch.rand(count, generator=generator) * 2 - 1) * math.radians(max_degrees)
    x, y, z = axis.unbind(1)
    zero = torch.zeros_like(x)
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=1).view(count, 3, 3)
    sin, cos = angle.sin().view(-1, 1, 1), angle.cos().view(-1, 1, 1)
    eye = torch.eye(3).expand(count, 3, 3)
    return eye + sin * cross + (1 - cos) * (cross @ cross)


def time_warp(
    x: Tensor, strength: float, *, knots: int = 4, generator: torch.Generator | None = None
) -> Tensor:
    """Resample each window on a smooth random monotone time axis.

    The local speed is ``1 + strength · N(0, 1)`` at ``knots`` evenly spaced points (clamped to
    ``≥ 0.1``), linearly interpolated over the window; its cumulative sum, scaled to span the
    window, gives the new sample times, at which the signal is linearly interpolated. The first
    and last samples stay in place.

    Args:
        x: ``(B, C, T)``.
        strength: Standard deviation of the speed (0: unchanged).
        knots: Points where the speed is drawn.

    Returns:
        ``(B, C, T)``.
    """
    b, c, t = x.shape
    if strength == 0 or t < 3:
        return x
    speed = (1 + strength * torch.randn(b, 1, knots, generator=generator)).clamp_min(0.1)
    speed = nn.functional.interpolate(speed, size=t - 1, mode="linear", align_corners=True)
    steps = speed.squeeze(1)
    times = torch.cat([steps.new_zeros(b, 1), steps.cumsum(dim=1)], dim=1)
    times = times / times[:, -1:] * (t - 1)  # (B, T), from 0 to T − 1
    times = times.to(x.device, x.dtype)
    left = times.floor().long().clamp(0, t - 2)
    frac = (times - left).unsqueeze(1)
    left = left.unsqueeze(1).expand(b, c, t)
    low, high = x.gather(2, left), x.gather(2, left + 1)
    return low + frac * (high - low)


class InertialAugment(nn.Module):
    """Random rotation, scaling, jitter and time warp of normalised inertial windows.

    Channels are taken as consecutive ``(x, y, z)`` triads (accelerometer, gyroscope, ...);
    one random rotation per sample turns every triad of it, so the sensor's axes stay
    consistent, like a sensor worn at another angle.

    Args:
        rotation: Largest rotation angle in degrees (0: none).
        scaling: Standard deviation of one random gain ``1 + scaling · N(0, 1)`` per sample.
        jitter: Standard deviation of added Gaussian noise, in units of each channel's training
            standard deviation (``scale``).
        time_warp: Speed standard deviation of :func:`time_warp`.
        shift: ``(C,)`` normalisation shift of the inputs (zeros if ``None``).
        scale: ``(C,)`` normalisation scale of the inputs (ones if ``None``).

    Shapes:
        ``forward``: ``(B, C, T) → (B, C, T)``; identity in eval mode.

    Raises:
        DcatError: A negative strength, a rotation over 180°, or (on the first batch) a channel
            count that is not a multiple of 3 when rotating.
    """

    def __init__(
        self,
        *,
        rotation: float = 0.0,
        scaling: float = 0.0,
        jitter: float = 0.0,
        time_warp: float = 0.0,
        shift: Sequence[float] | Tensor | None = None,
        scale: Sequence[float] | Tensor | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("rotation", rotation),
            ("scaling", scaling),
            ("jitter", jitter),
            ("time_warp", time_warp),
        ):
            if not value >= 0:
                raise DcatError(f"augmentation {name} must be ≥ 0, got {value}")
        if rotation > 180:
            raise DcatError(f"augmentation rotation is an angle in degrees ≤ 180, got {rotation}")
        self.rotation, self.scaling, self.jitter, self.warp = rotation, scaling, jitter, time_warp
        # not buffers: the statistics belong to the data, and checkpoints stay the model's
        self.shift = None if shift is None else torch.as_tensor(shift, dtype=torch.float32)
        self.scale = None if scale is None else torch.as_tensor(scale, dtype=torch.float32)

    def extra_repr(self) -> str:
        return (
            f"rotation={self.rotation}, scaling={self.scaling}, jitter={self.jitter}, "
            f"time_warp={self.warp}"
        )

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        if x.ndim != 3:
            raise DcatError(f"inertial augmentation needs (B, C, T) windows, got {tuple(x.shape)}")
        b, c, _ = x.shape
        shift = (self.shift if self.shift is not None else torch.zeros(c)).to(x).view(1, -1, 1)
        scale = (self.scale if self.scale is not None else torch.ones(c)).to(x).view(1, -1, 1)
        if shift.shape[1] != c or scale.shape[1] != c:
            raise DcatError(
                f"inertial augmentation was given statistics of {shift.shape[1]} channels, "
                f"the input has {c}"
            )
        raw = x * scale + shift
        if self.rotation > 0:
            if c % 3:
                raise DcatError(
                    f"rotation augmentation needs channels in (x, y, z) triads, got {c} channels"
                )
            rotations = random_rotations(b, self.rotation).to(x)
            triads = raw.view(b, c // 3, 3, -1)
            raw = torch.einsum("bij,bkjt->bkit", rotations, triads).reshape(raw.shape)
        if self.scaling > 0:
            raw = raw * (1 + self.scaling * torch.randn(b, 1, 1)).to(x)
        out = (raw - shift) / scale
        if self.warp > 0:
            out = time_warp(out, self.warp)
        if self.jitter > 0:
            out = out + self.jitter * torch.randn(out.shape).to(x)
        return out
