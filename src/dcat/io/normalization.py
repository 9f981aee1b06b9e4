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

__all__ = ["ChannelStats", "NormKind", "fit_normalization", "normalize"]

NormKind = Literal["zscore", "minmax"]


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


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel normalisation of one modality: ``(x − shift) / scale``.

    Attributes:
        kind: ``"zscore"`` (mean, std) or ``"minmax"`` (to ``[−1, 1]``, as the paper does for IMU).
        shift: ``(C,)``.
        scale: ``(C,)``, positive.
    """

    kind: NormKind
    shift: np.ndarray
    scale: np.ndarray

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Normalise ``(N, C, T)`` or ``(C, T)`` float arrays (:func:`normalize`)."""
        return normalize(array, self.shift, self.scale)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping) -> ChannelStats:
        return cls(
            data["kind"],
            np.asarray(data["shift"], dtype=np.float64),
            np.asarray(data["scale"], dtype=np.float64),
        )


def fit_normalization(array: np.ndarray, kind: NormKind = "zscore") -> ChannelStats:
    """Fit per-channel statistics on ``(N, C, T)`` training data (never on test data)."""
    if array.ndim != 3:
        raise DcatError(f"expected an array of shape (N, C, T), got {array.shape}")
    data = array.astype(np.float64)
    if kind == "zscore":
        shift, scale = data.mean(axis=(0, 2)), data.std(axis=(0, 2))
    elif kind == "minmax":
        low, high = data.min(axis=(0, 2)), data.max(axis=(0, 2))
        shift, scale = (high + low) / 2, (high - low) / 2
    else:
        raise DcatError(f"normalization kind must be 'zscore' or 'minmax', got {kind!r}")
    return ChannelStats(kind, shift, np.where(scale > 1e-12, scale, 1.0))
