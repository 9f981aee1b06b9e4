"""Cut continuous synchronised streams into labelled windows on a common time axis (seconds).

Each modality keeps its own sampling rate (docs/design.md, "Data model"): a 2 s window is
``round(2 * rate)`` samples of that modality. Recorded timestamps may jitter, repeat or skip;
every window is resampled onto a regular grid per modality, and windows that overlap a long gap
in any stream are dropped rather than filled by interpolation across the gap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np

from dcat.errors import DcatError
from dcat.io.resample import interpolate
from dcat.io.table import non_finite

__all__ = ["Stream", "Windows", "cut_windows", "window_starts"]

LabelRule = Literal["majority", "center"]

# Relative slack when testing ``start + window_s <= span end``: starts are built as
# ``span_start + k * stride_s`` and a window that fits exactly must not be lost to rounding.
# Relative to the span and window (not the absolute times, which may be UNIX seconds).
_FIT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Stream:
    """One continuously recorded modality.

    Attributes:
        times: ``(N,)`` sample times in seconds; may jitter, repeat and need not start at 0.
        values: ``(N, C)`` samples, one column per channel.
        rate: Nominal sampling rate in Hz: a window of ``W`` seconds has ``round(W * rate)``
            samples on the output grid.
    """

    times: np.ndarray
    values: np.ndarray
    rate: float


@dataclass(frozen=True)
class Windows:
    """Labelled windows cut from synchronised streams.

    Attributes:
        inputs: Modality → ``(num_windows, C, round(window_s * rate))`` float32.
        labels: ``(num_windows,)`` int64.
        starts: ``(num_windows,)`` float64 window start times in seconds.
    """

    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    starts: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _prepare_stream(name: str, stream: Stream) -> tuple[np.ndarray, np.ndarray]:
    """Validate one stream; return its sorted unique times ``(M,)`` and values ``(M, C)``."""
    rate = float(stream.rate)
    if not np.isfinite(rate) or rate <= 0:
        raise DcatError(f"stream {name!r}: rate must be a positive number of Hz, got {rate}")
    try:
        times = np.asarray(stream.times, dtype=np.float64)
        values = np.asarray(stream.values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DcatError(f"stream {name!r}: times and values must be numeric ({err})") from err
    if times.ndim != 1:
        raise DcatError(f"stream {name!r}: times must have shape (N,), got {times.shape}")
    if values.ndim != 2:
        raise DcatError(
            f"stream {name!r}: values must have shape (N, C), got {values.shape} "
            "(use values[:, None] for a single channel)"
        )
    if len(times) != len(values):
        raise DcatError(
            f"stream {name!r}: times has {len(times)} entries but values has {len(values)} rows"
        )
    if len(times) == 0 or values.shape[1] == 0:
        raise DcatError(f"stream {name!r} is empty (values shape {values.shape})")
    bad_time = non_finite(times)
    if bad_time is not None:
        (bad,), _ = bad_time
        raise DcatError(f"stream {name!r}: time at index {bad} is {times[bad]} (not finite)")
    bad_value = non_finite(values)
    if bad_value is not None:
        (row, col), _ = bad_value
        raise DcatError(
            f"stream {name!r}: value at index {row}, channel {col} is {values[row, col]} "
            "(not finite)"
        )
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    unique, first, counts = np.unique(times, return_index=True, return_counts=True)
    if len(unique) < len(times):
        # Devices that batch their events stamp several samples with one time; averaging them
        # keeps their information without inventing an order inside the batch.
        values = np.add.reduceat(values, first, axis=0) / counts[:, None]
    return unique, values


def _slack(span_end: float, window_s: float) -> float:
    """Rounding allowance for comparing computed window edges with recorded times."""
    return _FIT_TOLERANCE * max(1.0, window_s) + 4 * float(np.spacing(abs(span_end)))


def window_starts(
    span_start: float, span_end: float, window_s: float, stride_s: float
) -> np.ndarray:
    """Starts ``span_start + k * stride_s`` of the windows that fit in ``[span_start, span_end]``.

    Returns:
        ``(W,)`` float64; a window that fits exactly up to rounding is kept.
    """
    span = span_end - span_start
    slack = _slack(span_end, max(window_s, span))
    if span + slack < window_s:
        return np.zeros(0, dtype=np.float64)
    count = int(np.floor((span - window_s + slack) / stride_s)) + 1
    return span_start + np.arange(count, dtype=np.float64) * stride_s


def _overlaps_gap(
    times: np.ndarray, starts: np.ndarray, window_s: float, max_gap: float
) -> np.ndarray:
    """``(W,)`` True where a gap ``> max_gap`` between consecutive samples meets the window."""
    steps = np.diff(times)
    # The slack keeps a step of exactly ``max_gap`` (e.g. 3 periods of float timestamps) allowed.
    gap = np.flatnonzero(steps > max_gap * (1 + 1e-9))
    if gap.size == 0:
        return np.zeros(len(starts), dtype=bool)
    gap_begin, gap_end = times[gap], times[gap + 1]
    ends = starts + window_s
    hits = (gap_begin[None, :] < ends[:, None]) & (gap_end[None, :] > starts[:, None])
    return cast(np.ndarray, hits.any(1))  # (W, G) reduced over axis 1: an array


def _window_labels(
    label_times: np.ndarray,
    label_values: np.ndarray,
    starts: np.ndarray,
    window_s: float,
    rule: LabelRule,
) -> tuple[np.ndarray, np.ndarray]:
    """Label of each window and the fraction of its label samples that carry that label.

    Windows with no label sample inside get fraction 0 (and label −1, dropped); a window whose
    label samples are mostly −1 (unlabelled) gets label −1 and a fraction above 0 (kept).
    """
    labels = np.full(len(starts), -1, dtype=np.int64)
    fractions = np.zeros(len(starts), dtype=np.float64)
    # Window edges are computed as start + k * stride and may land a rounding error past a label
    # sample recorded on the same clock; shifting both edges by the slack keeps it inside.
    slack = _slack(float(starts[-1]) if len(starts) else 0.0, window_s)
    lows = np.searchsorted(label_times, starts - slack, side="left")
    highs = np.searchsorted(label_times, starts + window_s - slack, side="left")
    for i, (low, high) in enumerate(zip(lows, highs, strict=True)):
        if high <= low:
            continue
        inside = label_values[low:high]
        if rule == "majority":
            values, first, counts = np.unique(inside, return_index=True, return_counts=True)
            tied = np.flatnonzero(counts == counts.max())
            # Ties go to the label seen first in time, so the result does not depend on label ids.
            label = values[tied[np.argmin(first[tied])]]
        else:
            centre = starts[i] + window_s / 2
            # argmin takes the earlier of two equally near samples.
            label = inside[np.argmin(np.abs(label_times[low:high] - centre))]
        labels[i] = label
        fractions[i] = np.count_nonzero(inside == label) / len(inside)
    return labels, fractions


def _resample(
    times: np.ndarray, values: np.ndarray, starts: np.ndarray, steps: int, rate: float
) -> np.ndarray:
    """Linear interpolation onto ``start + (arange(steps) + 0.5) / rate``: ``(W, C, steps)``."""
    grid = (starts[:, None] + (np.arange(steps) + 0.5)[None, :] / rate).ravel()
    out = interpolate(grid, times, values).reshape(len(starts), steps, values.shape[1])
    return np.ascontiguousarray(out.transpose(0, 2, 1), dtype=np.float32)


def _check_window_options(
    streams: Mapping[str, Stream],
    window_s: float,
    stride_s: float,
    label_rule: str,
    min_label_fraction: float,
) -> None:
    """Reject an empty ``streams`` mapping and out-of-range scalar options of :func:`cut_windows`.

    Raises:
        DcatError: No modality, a non-positive or non-finite window or stride, an unknown label
            rule or a label fraction outside ``[0, 1]``.
    """
    if not streams:
        raise DcatError("streams must hold at least one modality")
    for what, value in (("window_s", window_s), ("stride_s", stride_s)):
        if not np.isfinite(value) or value <= 0:
            raise DcatError(f"{what} must be a positive number of seconds, got {value}")
    if label_rule not in ("majority", "center"):
        raise DcatError(f"label_rule must be 'majority' or 'center', got {label_rule!r}")
    if not 0.0 <= min_label_fraction <= 1.0:
        raise DcatError(f"min_label_fraction must lie in [0, 1], got {min_label_fraction}")


def _samples_per_window(streams: Mapping[str, Stream], window_s: float) -> dict[str, int]:
    """Modality → ``round(window_s * rate)``, the samples of one window on that modality's grid.

    Raises:
        DcatError: A modality whose rate leaves fewer than one sample per window.
    """
    steps = {name: round(window_s * float(stream.rate)) for name, stream in streams.items()}
    for name, count in steps.items():
        if count < 1:
            raise DcatError(
                f"stream {name!r}: window_s={window_s} at {streams[name].rate} Hz gives no "
                "samples per window"
            )
    return steps


def _max_gaps(
    streams: Mapping[str, Stream], max_gap_s: float | Mapping[str, float] | None
) -> dict[str, float]:
    """Modality → largest allowed gap in seconds, defaulting to 3 sample periods ``3 / rate``.

    Raises:
        DcatError: A non-positive or non-finite gap, or a mapping naming an unknown modality.
    """
    gaps: dict[str, float] = {}
    for name, stream in streams.items():
        given = max_gap_s.get(name) if isinstance(max_gap_s, Mapping) else max_gap_s
        gap = 3.0 / float(stream.rate) if given is None else float(given)
        if not np.isfinite(gap) or gap <= 0:
            raise DcatError(f"max_gap_s for stream {name!r} must be positive, got {given}")
        gaps[name] = gap
    if isinstance(max_gap_s, Mapping) and set(max_gap_s) - set(streams):
        raise DcatError(
            f"max_gap_s names unknown modalities {sorted(set(max_gap_s) - set(streams))}; "
            f"streams are {list(streams)}"
        )
    return gaps


def _prepare_labels(
    label_times: np.ndarray, label_values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Validate per-time labels; return them sorted by time.

    Args:
        label_times: ``(L,)`` label times in seconds.
        label_values: ``(L,)`` integer labels.

    Returns:
        ``(L,)`` float64 times and ``(L,)`` int64 labels in stable time order.

    Raises:
        DcatError: Mismatched or non-1-D shapes, non-integer labels or a non-finite time.
    """
    label_times = np.asarray(label_times, dtype=np.float64)
    label_values = np.asarray(label_values)
    if label_times.ndim != 1 or label_values.ndim != 1 or len(label_times) != len(label_values):
        raise DcatError(
            f"label_times and label_values must be 1-D of one length, got {label_times.shape} "
            f"and {label_values.shape}"
        )
    if label_values.size and not np.issubdtype(label_values.dtype, np.integer):
        raise DcatError(f"label_values must be integers, got dtype {label_values.dtype}")
    bad_label = non_finite(label_times)
    if bad_label is not None:
        (bad,), _ = bad_label
        raise DcatError(f"label_times[{bad}] is {label_times[bad]} (not finite)")
    order = np.argsort(label_times, kind="stable")
    return label_times[order], label_values[order].astype(np.int64)


def _kept_windows(
    prepared: Mapping[str, tuple[np.ndarray, np.ndarray]],
    gaps: Mapping[str, float],
    label_times: np.ndarray,
    label_values: np.ndarray,
    *,
    window_s: float,
    stride_s: float,
    label_rule: LabelRule,
    min_label_fraction: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Starts and labels of the windows in the common span that survive gaps and label checks.

    Args:
        prepared: Modality → sorted unique times ``(M,)`` and values ``(M, C)``.
        gaps: Modality → largest allowed gap in seconds.
        label_times: ``(L,)`` sorted label times in seconds.
        label_values: ``(L,)`` int64 labels.
        window_s: Window length in seconds.
        stride_s: Step between window starts in seconds.
        label_rule: How a window's label is chosen (see :func:`cut_windows`).
        min_label_fraction: Smallest share of label samples that must carry the window's label.

    Returns:
        ``(W,)`` float64 starts and ``(W,)`` int64 labels of the kept windows.
    """
    span_start = max(times[0] for times, _ in prepared.values())
    span_end = min(times[-1] for times, _ in prepared.values())
    starts = window_starts(span_start, span_end, window_s, stride_s)
    keep = np.ones(len(starts), dtype=bool)
    for name, (times, _) in prepared.items():
        keep &= ~_overlaps_gap(times, starts, window_s, gaps[name])
    labels, fractions = _window_labels(label_times, label_values, starts, window_s, label_rule)
    # The small slack keeps e.g. 2/3 ≥ 2/3 when the threshold was written as a rounded decimal.
    # a window with label samples inside is kept, an unlabelled one (majority −1) too
    keep &= (fractions > 0) & (fractions >= min_label_fraction - 1e-12)
    return starts[keep], labels[keep]


def cut_windows(
    streams: Mapping[str, Stream],
    label_times: np.ndarray,
    label_values: np.ndarray,
    *,
    window_s: float,
    stride_s: float,
    max_gap_s: float | Mapping[str, float] | None = None,
    label_rule: LabelRule = "majority",
    min_label_fraction: float = 0.0,
) -> Windows:
    """Cut synchronised streams into labelled windows on a common time axis.

    Each stream is sorted by time and samples sharing a timestamp are averaged. Windows start at
    the beginning of the span all streams cover (the intersection of their ``[first, last]``
    times) and step by ``stride_s`` while ``start + window_s`` stays within the span. Inside a
    window, modality ``m`` is linearly interpolated onto ``start + (arange(n) + 0.5) / rate_m``
    with ``n = round(window_s * rate_m)``.

    A window is dropped when any stream has two consecutive samples more than its maximum gap
    apart with the gap overlapping the window, when no label sample lies in
    ``[start, start + window_s)``, or when fewer than ``min_label_fraction`` of its label samples
    carry the window's label.

    Args:
        streams: Modality → :class:`Stream`.
        label_times: ``(L,)`` times in seconds of per-time labels (e.g. one stream's samples).
        label_values: ``(L,)`` integer labels at those times; ``-1`` marks a moment known to
            be unlabelled, and a window whose label is ``-1`` is kept with it (an unlabelled
            sample, ``dcat.data.UNLABELLED``).
        window_s: Window length in seconds.
        stride_s: Step between window starts in seconds.
        max_gap_s: Largest allowed gap between consecutive samples, in seconds: one value for
            all modalities or a modality → value mapping; ``None`` (or a modality missing from
            the mapping) means 3 sample periods of that modality, ``3 / rate``.
        label_rule: ``"majority"``: the most frequent label in the window, ties to the label
            whose samples come first; ``"center"``: the label sample nearest the window centre.
        min_label_fraction: Drop windows where the window's label covers a smaller fraction of
            the label samples inside (0 keeps all).

    Returns:
        :class:`Windows` with ``inputs[m]`` ``(W, C_m, round(window_s * rate_m))`` float32,
        ``labels`` ``(W,)`` int64 and ``starts`` ``(W,)`` float64.

    Raises:
        DcatError: Empty or malformed streams (named, with the first non-finite index), a
            non-positive rate, window, stride or gap, or malformed labels.
    """
    _check_window_options(streams, window_s, stride_s, label_rule, min_label_fraction)
    prepared = {name: _prepare_stream(name, stream) for name, stream in streams.items()}
    steps = _samples_per_window(streams, window_s)
    gaps = _max_gaps(streams, max_gap_s)
    label_times, label_values = _prepare_labels(label_times, label_values)
    starts, labels = _kept_windows(
        prepared,
        gaps,
        label_times,
        label_values,
        window_s=window_s,
        stride_s=stride_s,
        label_rule=label_rule,
        min_label_fraction=min_label_fraction,
    )
    inputs = {}
    for name, (times, values) in prepared.items():
        inputs[name] = _resample(times, values, starts, steps[name], float(streams[name].rate))
    return Windows(inputs=inputs, labels=labels, starts=starts)
