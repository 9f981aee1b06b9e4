"""Per-channel normalisation statistics, fitted on training data and stored in model cards.

Training (:meth:`dcat.data.PairedDataset.normalized`) and deployment (``dcat predict``) apply
the same :func:`normalize` (through :meth:`ChannelStats.apply` or a model card's stored
``shift`` and ``scale``), so a deployed model sees inputs scaled exactly as in
training.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dcat.errors import DcatError
from dcat.io.skeleton import body_normalize, parse_body_mode

__all__ = ["ChannelStats", "NormKind", "center_positions", "fit_normalization", "normalize"]

NormKind = Literal["zscore", "minmax", "isotropic"]


def normalize(array: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per-channel ``(x − shift) / scale``, computed in float64 and returned as float32.

    Args:
        array: ``(N, C, T)`` or ``(C, T)`` samples.
        shift: ``(C,)``.
        scale: ``(C,)``, positive.

    Returns:
        float32 of ``array``'s shape.
    """
    shift = np.asarray(shift, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    return ((array - shift[:, None]) / scale[:, None]).astype(np.float32)


def center_positions(array: np.ndarray, center: str | None, axes: int = 3) -> np.ndarray:
    """Remove each sample's position from position-like channels (a skeleton's joints).

    The channels are points of ``axes`` coordinates each, laid out point by point (joint 0's
    x, y, z, then joint 1's, ...). ``"mean"`` subtracts, per sample and per coordinate, the
    mean over all points and steps (where the body stood); ``"root:J"`` subtracts point ``J``'s
    trajectory, step by step. Either way the pose and the motion stay, the place in the room
    goes: it says nothing about the class and differs from subject to subject.
    ``"body:R:A:B:D"`` (a skeleton layout's :meth:`~dcat.io.skeleton.SkeletonLayout.body_mode`)
    also divides by the body's size: :func:`dcat.io.skeleton.body_normalize`.

    Args:
        array: ``(N, C, T)`` or ``(C, T)``, ``C`` a multiple of ``axes``.
        center: ``"mean"``, ``"root:J"``, ``"body:R:A:B:D"`` or ``None`` (unchanged).
        axes: Coordinates per point.

    Returns:
        An array of ``array``'s shape and dtype.

    Raises:
        DcatError: An unknown mode, a channel count that is not a multiple of ``axes``, or a
            root point out of range.
    """
    if center is None:
        return array
    body = parse_body_mode(center)
    if body is not None:
        root, first, second, dims = body
        return body_normalize(array, root, (first, second), dims)
    if array.ndim not in (2, 3) or array.shape[-2] % axes:
        raise DcatError(
            f"centring needs (N, C, T) or (C, T) with C a multiple of {axes} (points of "
            f"{axes} coordinates), got shape {array.shape}"
        )
    points = array.reshape(*array.shape[:-2], array.shape[-2] // axes, axes, array.shape[-1])
    if center == "mean":
        origin = points.mean(axis=(-3, -1), keepdims=True)
    elif center.startswith("root:") and center[5:].isdigit():
        root = int(center[5:])
        if root >= points.shape[-3]:
            raise DcatError(f"centring: root point {root} of {points.shape[-3]} does not exist")
        origin = points[..., root : root + 1, :, :]
    else:
        raise DcatError(
            f"centring must be 'mean' or 'root:J' (J a point index), or a skeleton's "
            f"'body:R:A:B:D', got {center!r}"
        )
    return (points - origin).reshape(array.shape).astype(array.dtype, copy=False)


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel normalisation of one modality: ``(x − shift) / scale``.

    Attributes:
        kind: ``"zscore"`` (mean, std), ``"minmax"`` (to ``[−1, 1]``, as the paper does for IMU)
            or ``"isotropic"`` (points: one mean per coordinate axis, one std for all).
        shift: ``(C,)``.
        scale: ``(C,)``, positive.
        center: Per-sample centring applied first (:func:`center_positions`), or ``None``.
    """

    kind: NormKind
    shift: np.ndarray
    scale: np.ndarray
    center: str | None = None

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Normalise ``(N, C, T)`` or ``(C, T)`` float arrays: :func:`center_positions`, then
        :func:`normalize`."""
        return normalize(center_positions(array, self.center), self.shift, self.scale)

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}
        if self.center is not None:  # cards of uncentred models stay as they were
            out["center"] = self.center
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> ChannelStats:
        return cls(
            data["kind"],
            np.asarray(data["shift"], dtype=np.float64),
            np.asarray(data["scale"], dtype=np.float64),
            data.get("center"),
        )


def _isotropic(data: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(shift, scale)`` of points in ``(N, P·dims, T)`` data: each axis's mean
    over every point, sample and step, and one standard deviation about those means."""
    n, channels, steps = data.shape
    if dims < 1 or channels % dims:
        raise DcatError(
            f"isotropic normalization needs points of {dims} coordinates, got {channels} "
            "channels (not a multiple)"
        )
    points = data.reshape(n, channels // dims, dims, steps)
    axis_mean = points.mean(axis=(0, 1, 3))
    spread = float(np.sqrt(((points - axis_mean[None, :, None]) ** 2).mean()))
    return np.tile(axis_mean, channels // dims), np.full(channels, spread)


def fit_normalization(
    array: np.ndarray, kind: NormKind = "zscore", center: str | None = None, dims: int = 3
) -> ChannelStats:
    """Fit per-channel statistics on ``(N, C, T)`` training data (never on test data).

    Args:
        array: ``(N, C, T)`` training samples.
        kind: ``"zscore"`` or ``"minmax"`` (each channel on its own), or ``"isotropic"`` for
            points (channels point by point, ``dims`` coordinates each): one mean per
            coordinate axis shared by every point and one standard deviation for all
            channels, so that differences of points (a skeleton's bones) and rotations keep
            their geometry, which per-channel statistics would distort.
        center: Per-sample centring (:func:`center_positions`) applied before fitting and
            whenever the statistics are applied.
        dims: Coordinates per point, for ``"isotropic"``.
    """
    if array.ndim != 3:
        raise DcatError(f"expected an array of shape (N, C, T), got {array.shape}")
    data = center_positions(array, center).astype(np.float64)
    if kind == "zscore":
        shift, scale = data.mean(axis=(0, 2)), data.std(axis=(0, 2))
    elif kind == "minmax":
        low, high = data.min(axis=(0, 2)), data.max(axis=(0, 2))
        shift, scale = (high + low) / 2, (high - low) / 2
    elif kind == "isotropic":
        shift, scale = _isotropic(data, dims)
    else:
        raise DcatError(
            f"normalization kind must be 'zscore', 'minmax' or 'isotropic', got {kind!r}"
        )
    return ChannelStats(kind, shift, np.where(scale > 1e-12, scale, 1.0), center)
