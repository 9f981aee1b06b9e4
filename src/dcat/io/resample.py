"""Linear resampling of channels: segmented trials, recordings onto a uniform grid, windows.

Training (:func:`dcat.io.windows.cut_windows`, the manifest's segmented samples) and deployment
(``dcat predict``) interpolate with the same :func:`interpolate`.
"""

from __future__ import annotations

import math

import numpy as np

from dcat.errors import DcatError

__all__ = ["interpolate", "resample_linear", "resample_to_grid", "uniform_grid"]


def interpolate(grid: np.ndarray, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of each channel at the times ``grid``.

    Args:
        grid: ``(G,)`` times to sample at.
        times: ``(N,)`` increasing sample times.
        values: ``(N, C)`` samples.

    Returns:
        ``(G, C)`` float64; times outside ``[times[0], times[-1]]`` take the end values.
    """
    channels = [np.interp(grid, times, values[:, c]) for c in range(values.shape[1])]
    return np.stack(channels, axis=1)


def uniform_grid(times: np.ndarray, rate: float) -> np.ndarray:
    """``(K,)`` times ``times[0] + k / rate`` up to ``times[-1]``: the steps a recording covers."""
    # The allowance keeps a last time stamp that lands on the grid up to rounding.
    count = math.floor((times[-1] - times[0]) * rate + 1e-9) + 1
    return times[0] + np.arange(count) / rate


def resample_to_grid(times: np.ndarray, values: np.ndarray, rate: float) -> np.ndarray:
    """Samples ``(N, C)`` at increasing ``times`` → ``(K, C)`` on :func:`uniform_grid`.

    Args:
        times: ``(N,)`` increasing times in seconds.
        values: ``(N, C)`` samples.
        rate: Rate of the output grid in Hz.

    Returns:
        ``(K, C)`` float64, ``K = floor((times[-1] - times[0]) * rate) + 1``, step ``k`` at
        ``times[0] + k / rate``.
    """
    return interpolate(uniform_grid(times, rate), times, values)


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
    return interpolate(target, source, array.T).T.astype(np.float32)
