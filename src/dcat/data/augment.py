"""Standard inertial augmentations: random rotation, scaling, jitter and time warp.

They follow Um et al., "Data Augmentation of Wearable Sensor Data for Parkinson's Disease
Monitoring using Convolutional Neural Networks" (ICMI 2017), the usual set for accelerometer
and gyroscope windows. A :class:`InertialAugment` runs on the trained model's input batch, in
training mode only, for the baseline and every transfer alike (it is never counted as
transfer); frozen sources always see clean inputs, so their caches stay valid.

Inputs arrive normalised, ``(x − shift) / scale`` per channel. A rotation is physical only on
the raw signal, so the module undoes the normalisation, rotates and scales there, and normalises
again; jitter is added in normalised units (a fraction of each channel's training std).

:class:`SkeletonAugment` is the same for joint sequences, with the skeleton's own geometry: one
random rotation per sample about the layout's vertical axis (a subject facing another way), a
random size, a random temporal crop resampled to the window's length, time warp and jitter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dcat.errors import DcatError

__all__ = [
    "InertialAugment",
    "SkeletonAugment",
    "random_crop",
    "random_rotations",
    "time_warp",
    "vertical_rotations",
]


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


def vertical_rotations(
    count: int, max_degrees: float, up_axis: int = 1, *, generator: torch.Generator | None = None
) -> Tensor:
    """``count`` rotation matrices ``(count, 3, 3)`` about the coordinate axis ``up_axis``, by
    angles uniform in ``[−max_degrees, max_degrees]``: the vertical axis of a skeleton stays
    where it is, the body turns about it."""
    angle = (torch.rand(count, generator=generator) * 2 - 1) * math.radians(max_degrees)
    first, second = (a for a in range(3) if a != up_axis)
    out = torch.eye(3).repeat(count, 1, 1)
    out[:, first, first] = angle.cos()
    out[:, first, second] = -angle.sin()
    out[:, second, first] = angle.sin()
    out[:, second, second] = angle.cos()
    return out


def random_crop(x: Tensor, crop: float, *, generator: torch.Generator | None = None) -> Tensor:
    """A random stretch of each window, resampled (linearly) back to the window's length.

    Each sample keeps a fraction of its window drawn uniformly in ``[1 − crop, 1]``, starting
    at a uniformly random place, so an action seen a little shorter or off-centre.

    Args:
        x: ``(B, C, T)``.
        crop: Largest fraction cut off, in ``[0, 1)`` (0: unchanged).

    Returns:
        ``(B, C, T)``.
    """
    b, _, t = x.shape
    if crop == 0 or t < 2:
        return x
    keep = 1 - crop * torch.rand(b, 1, generator=generator)
    start = (1 - keep) * torch.rand(b, 1, generator=generator)
    times = (start + keep * torch.linspace(0, 1, t).view(1, t)) * (t - 1)  # (B, T)
    return _sample_at(x, times.to(x.device, x.dtype))


def _sample_at(x: Tensor, times: Tensor) -> Tensor:
    """``x`` ``(B, C, T)`` linearly interpolated at fractional steps ``times`` ``(B, T')``."""
    b, c, t = x.shape
    left = times.floor().long().clamp(0, t - 2)
    frac = (times - left).unsqueeze(1)
    left = left.unsqueeze(1).expand(b, c, times.shape[1])
    low, high = x.gather(2, left), x.gather(2, left + 1)
    return low + frac * (high - low)


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


def _rotate_triads(x: Tensor, rotations: Tensor) -> Tensor:
    """Every ``(x, y, z)`` triad of sample ``i`` of ``x`` ``(B, C, T)`` (``C`` a multiple of 3)
    turned by ``rotations[i]`` (``(B, 3, 3)``); returns ``(B, C, T)``."""
    b, c, _ = x.shape
    triads = x.view(b, c // 3, 3, -1)
    return torch.einsum("bij,bkjt->bkit", rotations.to(x), triads).reshape(x.shape)


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
        crop: Largest fraction of the window cut off by :func:`random_crop`, in ``[0, 1)``.
        shift: ``(C,)`` normalisation shift of the inputs (zeros if ``None``).
        scale: ``(C,)`` normalisation scale of the inputs (ones if ``None``).

    Shapes:
        ``forward``: ``(B, C, T) → (B, C, T)``; identity in eval mode.

    Raises:
        DcatError: A negative strength, a rotation over 180°, a crop of 1 or more, or (on the
            first batch) a channel count that is not a multiple of 3 when rotating.
    """

    def __init__(
        self,
        *,
        rotation: float = 0.0,
        scaling: float = 0.0,
        jitter: float = 0.0,
        time_warp: float = 0.0,
        crop: float = 0.0,
        shift: Sequence[float] | Tensor | None = None,
        scale: Sequence[float] | Tensor | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("rotation", rotation),
            ("scaling", scaling),
            ("jitter", jitter),
            ("time_warp", time_warp),
            ("crop", crop),
        ):
            if not value >= 0:
                raise DcatError(f"augmentation {name} must be ≥ 0, got {value}")
        if rotation > 180:
            raise DcatError(f"augmentation rotation is an angle in degrees ≤ 180, got {rotation}")
        if crop >= 1:
            raise DcatError(f"augmentation crop is a fraction of the window < 1, got {crop}")
        self.rotation, self.scaling, self.jitter, self.warp = rotation, scaling, jitter, time_warp
        self.crop = crop
        # not buffers: the statistics belong to the data, and checkpoints stay the model's
        self.shift = None if shift is None else torch.as_tensor(shift, dtype=torch.float32)
        self.scale = None if scale is None else torch.as_tensor(scale, dtype=torch.float32)

    def extra_repr(self) -> str:
        return (
            f"rotation={self.rotation}, scaling={self.scaling}, jitter={self.jitter}, "
            f"time_warp={self.warp}, crop={self.crop}"
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
            raw = self._rotate(raw)
        if self.scaling > 0:
            raw = raw * (1 + self.scaling * torch.randn(b, 1, 1)).to(x)
        out = (raw - shift) / scale
        if self.crop > 0:
            out = random_crop(out, self.crop)
        if self.warp > 0:
            out = time_warp(out, self.warp)
        if self.jitter > 0:
            out = out + self.jitter * torch.randn(out.shape).to(x)
        return out

    def _rotate(self, raw: Tensor) -> Tensor:
        """One random rotation per sample of every ``(x, y, z)`` triad of ``(B, C, T)``."""
        b, c, _ = raw.shape
        if c % 3:
            raise DcatError(
                f"rotation augmentation needs channels in (x, y, z) triads, got {c} channels"
            )
        return _rotate_triads(raw, random_rotations(b, self.rotation))


class SkeletonAugment(InertialAugment):
    """Random rotation about the vertical axis, scaling, temporal crop, time warp and jitter of
    normalised joint sequences (channels joint by joint, ``dims`` coordinates each).

    The rotation and the scaling act on the un-normalised joints about the origin, which after
    the layout's body normalisation (``data.centering: body``) is the root joint: the body turns
    about its own vertical axis and grows or shrinks about its root. Bone lengths are kept by a
    rotation and multiplied by the gain of a scaling.

    Args:
        rotation: Largest rotation angle about the vertical axis, degrees (0: none).
        scaling: Standard deviation of one random gain ``1 + scaling · N(0, 1)`` per sample.
        jitter: Standard deviation of added noise, in training standard deviations.
        time_warp: Speed standard deviation of :func:`time_warp`.
        crop: Largest fraction of the window cut off by :func:`random_crop`.
        up_axis: Index of the vertical coordinate (the layout's; 1 for y).
        dims: Coordinates per joint; a rotation needs 3.
        shift: ``(C,)`` normalisation shift of the inputs (zeros if ``None``).
        scale: ``(C,)`` normalisation scale of the inputs (ones if ``None``).

    Shapes:
        ``forward``: ``(B, J·dims, T) → (B, J·dims, T)``; identity in eval mode.

    Raises:
        DcatError: As :class:`InertialAugment`, or a rotation of a 2-D skeleton.
    """

    def __init__(
        self,
        *,
        rotation: float = 0.0,
        scaling: float = 0.0,
        jitter: float = 0.0,
        time_warp: float = 0.0,
        crop: float = 0.0,
        up_axis: int = 1,
        dims: int = 3,
        shift: Sequence[float] | Tensor | None = None,
        scale: Sequence[float] | Tensor | None = None,
    ) -> None:
        super().__init__(
            rotation=rotation, scaling=scaling, jitter=jitter, time_warp=time_warp, crop=crop,
            shift=shift, scale=scale,
        )  # fmt: skip
        if rotation > 0 and dims != 3:
            raise DcatError(
                f"a rotation about the vertical axis needs 3-D joints, the skeleton has {dims} "
                "coordinates per joint"
            )
        if not 0 <= up_axis < dims:
            raise DcatError(f"up_axis must be one of the {dims} coordinates, got {up_axis}")
        self.up_axis, self.dims = up_axis, dims

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, up_axis={self.up_axis}"

    def _rotate(self, raw: Tensor) -> Tensor:
        """One random rotation per sample about the vertical axis of every joint."""
        b, c, _ = raw.shape
        if c % 3:
            raise DcatError(f"a 3-D skeleton has joints × 3 channels, got {c} channels")
        return _rotate_triads(raw, vertical_rotations(b, self.rotation, self.up_axis))
