"""Resampling helpers for segmented trials."""

from __future__ import annotations

import numpy as np

from dcat.errors import DcatError

__all__ = ["resample_linear"]


def resample_linear(array: np.ndarray, steps: int) -> np.ndarray:
    """Resample ``(C, T)`` to ``(C, steps)`` by linear interpolation on relative position.

    The first and last samples map to the first and last output steps, so two modalities of one
    trial that cover the same interval stay aligned however many samples each has.
    """
    if array.ndim != 2 or array.shape[1] < 1:
        raise DcatError(f"expected an array of shape (C, T) with T ≥ 1, got {array.shape}")
    if steps < 1:
        raise DcatError(f"steps must be positive, got {steps}")
    length = array.shape[1]
    if length == 1:
        return np.repeat(array.astype(np.float32), steps, axis=1)
    source = np.linspace(0.0, 1.0, length)
    target = np.linspace(0.0, 1.0, steps)
    return np.stack([np.interp(target, source, row) for row in array]).astype(np.float32)
