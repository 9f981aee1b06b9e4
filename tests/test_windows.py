"""Cutting synchronised streams into labelled windows (dcat.io.windows)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcat.io.windows import Stream, Windows, cut_windows


def _stream(rate: float, start: float, end: float, channels: int = 2, fn=None) -> Stream:
    times = start + np.arange(round((end - start) * rate) + 1) / rate
    fn = fn or (lambda t: np.stack([np.sin(t + c) for c in range(channels)], axis=1))
    return Stream(times, fn(times), rate)


def _labels(start: float, end: float, rate: float = 10.0, value: int = 0):
    times = start + np.arange(round((end - start) * rate)) / rate
    return times, np.full(len(times), value, dtype=np.int64)


def test_two_rates_give_window_counts_and_samples_per_modality() -> None:
    streams = {"imu": _stream(50.0, 0.0, 10.0, 6), "audio": _stream(16.0, 0.0, 10.0, 1)}
    windows = cut_windows(streams, *_labels(0.0, 10.0), window_s=2.0, stride_s=1.0)
    assert isinstance(windows, Windows)
    assert len(windows) == 9  # starts 0, 1, ..., 8: the last window ends exactly at 10 s
    np.testing.assert_allclose(windows.starts, np.arange(9.0))
    assert windows.inputs["imu"].shape == (9, 6, 100)
    assert windows.inputs["audio"].shape == (9, 1, 32)
    assert windows.inputs["imu"].dtype == np.float32
    assert windows.labels.dtype == np.int64
    assert windows.starts.dtype == np.float64


def test_common_span_is_the_intersection_of_streams() -> None:
    streams = {"a": _stream(50.0, 0.0, 10.0), "b": _stream(20.0, 0.5, 9.0)}
    windows = cut_windows(streams, *_labels(0.0, 10.0), window_s=2.0, stride_s=1.0)
    # span [0.5, 9.0]: floor((8.5 - 2) / 1) + 1 windows, starting at 0.5
    np.testing.assert_allclose(windows.starts, 0.5 + np.arange(7.0))


def test_linear_signal_is_resampled_exactly_onto_the_grid() -> None:
    def line(t):
        return np.stack([3.0 * t + 1.0, -2.0 * t + 0.5], axis=1)

    streams = {"a": _stream(50.0, 0.0, 6.0, fn=line), "b": _stream(16.0, 0.0, 6.0, fn=line)}
    windows = cut_windows(streams, *_labels(0.0, 6.0), window_s=1.5, stride_s=0.7)
    for name, rate in (("a", 50.0), ("b", 16.0)):
        steps = round(1.5 * rate)
        grid = windows.starts[:, None] + (np.arange(steps) + 0.5) / rate
        expected = np.stack([3.0 * grid + 1.0, -2.0 * grid + 0.5], axis=1)
        assert windows.inputs[name].shape == (len(windows), 2, steps)
        np.testing.assert_allclose(windows.inputs[name], expected, rtol=1e-6, atol=1e-5)


def test_jittered_timestamps_still_recover_a_smooth_signal() -> None:
    rng = np.random.default_rng(0)
    times = np.arange(1001) / 100.0 + rng.uniform(-0.003, 0.003, 1001)

    def wave(t):
        return np.sin(2 * np.pi * 0.5 * t)[:, None]

    stream = Stream(times, wave(times), 100.0)
    windows = cut_windows({"a": stream}, *_labels(0.0, 10.0), window_s=2.0, stride_s=0.5)
    grid = windows.starts[:, None] + (np.arange(200) + 0.5) / 100.0
    assert len(windows) == 16
    np.testing.assert_allclose(windows.inputs["a"][:, 0], wave(grid.ravel()).reshape(grid.shape),
                               atol=2e-3)  # fmt: skip


def test_duplicate_timestamps_are_merged_by_their_mean_and_order_does_not_matter() -> None:
    times = np.concatenate([np.arange(51) / 10.0, [1.0]])
    values = np.zeros((52, 1))
    values[10, 0], values[51, 0] = 4.0, 2.0  # two samples stamped t = 1.0
    order = np.random.default_rng(1).permutation(52)
    stream = Stream(times[order], values[order], 10.0)
    windows = cut_windows({"a": stream}, *_labels(0.0, 5.0), window_s=2.0, stride_s=2.0)
    # grid points 0.95 and 1.05 lie halfway between the merged 3.0 at t = 1 and 0 beside it
    first = windows.inputs["a"][0, 0]
    np.testing.assert_allclose(first[9:11], [1.5, 1.5])
    np.testing.assert_allclose(np.delete(first, [9, 10]), 0.0)


def test_a_gap_drops_exactly_the_windows_that_overlap_it() -> None:
    gappy = _stream(50.0, 0.0, 10.0)
    keep = ~((gappy.times >= 4.0) & (gappy.times < 4.5))  # gap from 3.98 s to 4.5 s
    streams = {"a": Stream(gappy.times[keep], gappy.values[keep], 50.0), "b": _stream(16, 0, 10)}
    labels = _labels(0.0, 10.0)
    windows = cut_windows(streams, *labels, window_s=1.0, stride_s=0.5)
    all_starts = np.arange(19) * 0.5
    expected = all_starts[(all_starts + 1.0 <= 3.98) | (all_starts >= 4.5)]
    np.testing.assert_allclose(windows.starts, expected)
    assert len(windows) == 19 - 3  # windows starting at 3.0, 3.5 and 4.0 meet the gap
    assert len(cut_windows(streams, *labels, window_s=1.0, stride_s=0.5, max_gap_s=0.6)) == 19
    per_modality = cut_windows(streams, *labels, window_s=1.0, stride_s=0.5, max_gap_s={"a": 0.6})
    assert len(per_modality) == 19


def test_default_max_gap_is_three_sample_periods_of_each_modality() -> None:
    times = np.arange(101) / 10.0
    times = np.delete(times, [50, 51])  # a 0.3 s step: exactly 3 periods at 10 Hz, kept
    streams = {"slow": Stream(times, np.zeros((len(times), 1)), 10.0)}
    assert len(cut_windows(streams, *_labels(0.0, 10.0), window_s=1.0, stride_s=1.0)) == 10
    times = np.delete(np.arange(101) / 10.0, [50, 51, 52])  # 4.9 s to 5.3 s: 4 periods
    streams = {"slow": Stream(times, np.zeros((len(times), 1)), 10.0)}
    windows = cut_windows(streams, *_labels(0.0, 10.0), window_s=1.0, stride_s=1.0)
    np.testing.assert_allclose(windows.starts, [0, 1, 2, 3, 6, 7, 8, 9])


@pytest.mark.parametrize(("change", "first_label", "second_label", "expected"), [
    (2.3, 5, 2, 2),  # 3 samples of 5, 7 of 2
    (2.7, 5, 2, 5),  # 7 of 5, 3 of 2
    (2.5, 7, 1, 7),  # tie: the label seen first wins, not the smaller id
    (2.5, 1, 7, 1),
])  # fmt: skip
def test_majority_label_with_a_change_mid_window(change, first_label, second_label, expected):
    label_times = np.arange(100) / 10.0
    label_values = np.where(label_times < change - 1e-9, first_label, second_label)
    windows = cut_windows(
        {"a": _stream(50.0, 0.0, 10.0)}, label_times, label_values, window_s=1.0, stride_s=1.0
    )
    assert windows.labels.tolist() == [first_label] * 2 + [expected] + [second_label] * 7


def test_center_rule_takes_the_label_nearest_the_window_centre() -> None:
    label_times = np.array([2.0, 2.1, 2.2, 2.45, 2.8])
    label_values = np.array([3, 3, 3, 4, 4])
    stream = {"a": _stream(50.0, 0.0, 5.0)}
    kwargs = {"window_s": 1.0, "stride_s": 1.0}
    majority = cut_windows(stream, label_times, label_values, **kwargs)
    center = cut_windows(stream, label_times, label_values, label_rule="center", **kwargs)
    # only [2, 3) holds label samples; the others are dropped
    np.testing.assert_allclose(majority.starts, [2.0])
    assert majority.labels.tolist() == [3]
    assert center.labels.tolist() == [4]


def test_min_label_fraction_drops_mixed_windows() -> None:
    label_times = np.arange(100) / 10.0
    label_values = (label_times >= 2.3 - 1e-9).astype(np.int64)  # [2, 3) is 30 % / 70 %
    stream = {"a": _stream(50.0, 0.0, 10.0)}
    kwargs = {"window_s": 1.0, "stride_s": 1.0}
    assert len(cut_windows(stream, label_times, label_values, **kwargs)) == 10
    kept = cut_windows(stream, label_times, label_values, min_label_fraction=0.7, **kwargs)
    assert len(kept) == 10
    dropped = cut_windows(stream, label_times, label_values, min_label_fraction=0.8, **kwargs)
    np.testing.assert_allclose(dropped.starts, [0, 1, 3, 4, 5, 6, 7, 8, 9])


def test_windows_without_label_samples_are_dropped() -> None:
    windows = cut_windows(
        {"a": _stream(50.0, 0.0, 10.0)}, *_labels(0.0, 4.0), window_s=2.0, stride_s=1.0
    )
    np.testing.assert_allclose(windows.starts, [0.0, 1.0, 2.0, 3.0])


def test_streams_shorter_than_a_window_give_empty_arrays_of_the_right_shape() -> None:
    windows = cut_windows(
        {"a": _stream(50.0, 0.0, 1.0, 3)}, *_labels(0.0, 1.0), window_s=2.0, stride_s=1.0
    )
    assert len(windows) == 0
    assert windows.inputs["a"].shape == (0, 3, 100)
    assert windows.labels.shape == (0,)


def _cut(streams, **overrides):
    kwargs = {"window_s": 1.0, "stride_s": 1.0, **overrides}
    return cut_windows(streams, *_labels(0.0, 5.0), **kwargs)


GOOD = _stream(10.0, 0.0, 5.0)


@pytest.mark.parametrize(("streams", "overrides", "message"), [
    ({}, {}, "at least one modality"),
    ({"imu": Stream(np.zeros(0), np.zeros((0, 2)), 10.0)}, {}, "stream 'imu' is empty"),
    ({"imu": Stream(GOOD.times, GOOD.values[:, 0], 10.0)}, {}, r"stream 'imu'.*shape \(N, C\)"),
    ({"imu": Stream(GOOD.times[:-1], GOOD.values, 10.0)}, {}, "times has 50 entries but values"),
    ({"imu": Stream(GOOD.times, GOOD.values, 0.0)}, {}, "stream 'imu': rate must be a positive"),
    ({"imu": Stream(GOOD.times, GOOD.values, -5.0)}, {}, "stream 'imu': rate must be a positive"),
    ({"a": GOOD}, {"window_s": 0.0}, "window_s must be a positive"),
    ({"a": GOOD}, {"window_s": -1.0}, "window_s must be a positive"),
    ({"a": GOOD}, {"stride_s": 0.0}, "stride_s must be a positive"),
    ({"a": GOOD}, {"window_s": 0.01}, "stream 'a': window_s=0.01 at 10.0 Hz gives no samples"),
    ({"a": GOOD}, {"label_rule": "mode"}, "label_rule must be"),
    ({"a": GOOD}, {"min_label_fraction": 1.5}, r"min_label_fraction must lie in \[0, 1\]"),
    ({"a": GOOD}, {"max_gap_s": 0.0}, "max_gap_s for stream 'a' must be positive"),
    ({"a": GOOD}, {"max_gap_s": {"b": 1.0}}, r"max_gap_s names unknown modalities \['b'\]"),
])  # fmt: skip
def test_invalid_arguments_raise(streams, overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        _cut(streams, **overrides)


def test_non_finite_values_name_the_modality_and_first_bad_index() -> None:
    values = GOOD.values.copy()
    values[17, 1] = np.nan
    values[30, 0] = np.inf
    with pytest.raises(ValueError, match=r"stream 'watch': value at index 17, channel 1 is nan"):
        _cut({"phone": GOOD, "watch": Stream(GOOD.times, values, 10.0)})
    times = GOOD.times.copy()
    times[4] = np.inf
    with pytest.raises(ValueError, match=r"stream 'phone': time at index 4 is inf"):
        _cut({"phone": Stream(times, GOOD.values, 10.0)})


def test_malformed_labels_raise() -> None:
    with pytest.raises(ValueError, match="label_times and label_values must be 1-D of one length"):
        cut_windows({"a": GOOD}, np.arange(5.0), np.zeros(4, int), window_s=1.0, stride_s=1.0)
    with pytest.raises(ValueError, match="label_values must be integers, got dtype float64"):
        cut_windows({"a": GOOD}, np.arange(5.0), np.zeros(5), window_s=1.0, stride_s=1.0)
    with pytest.raises(ValueError, match=r"label_times\[2\] is nan"):
        times = np.array([0.0, 1.0, np.nan])
        cut_windows({"a": GOOD}, times, np.zeros(3, int), window_s=1.0, stride_s=1.0)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.sampled_from([8.0, 16.0, 50.0, 100.0, 102.5]),
    samples=st.integers(2, 400),
    window=st.integers(1, 120),
    stride=st.integers(1, 60),
    offset=st.floats(-1e4, 1e4, allow_nan=False),
)
def test_window_count_formula_for_gap_free_streams(rate, samples, window, stride, offset) -> None:
    times = offset + np.arange(samples) / rate
    stream = Stream(times, np.ones((samples, 1)), rate)
    windows = cut_windows(
        {"a": stream},
        times,
        np.zeros(samples, dtype=np.int64),
        window_s=window / rate,
        stride_s=stride / rate,
    )
    span = samples - 1  # in sample periods
    expected = (span - window) // stride + 1 if span >= window else 0
    assert len(windows) == expected
    assert windows.inputs["a"].shape == (expected, 1, window)
    np.testing.assert_allclose(windows.inputs["a"], 1.0)
    if expected:
        assert windows.starts[0] == pytest.approx(offset)
        assert windows.starts[-1] + window / rate <= times[-1] + 1e-6
