"""Training and deployment read, normalise and window recordings with the same code.

A model is trained on what a data-set reader makes of a file and deployed on what ``dcat
predict`` makes of the same file: the two must be bit-identical, or a deployed model sees other
inputs than it was trained on.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from dcat.data import get_dataset
from dcat.deploy.predict import read_recording, window_inputs
from dcat.io.card import ModelCard
from dcat.io.normalization import ChannelStats, normalize

CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
RATE, STEPS = 50, 64


def _write_csv(path: Path, header: list[str], rows: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([repr(float(v)) for v in row] for row in rows)
    return path


def _segmented(tmp_path: Path, suffix: str) -> tuple[Path, list[Path]]:
    """Six IMU samples of exactly ``STEPS`` rows (so no resampling), as CSV or ``.npy``."""
    rng = np.random.default_rng(3)
    folder, files, rows = tmp_path / "own", [], []
    for i in range(6):
        values = rng.normal(size=(STEPS, len(CHANNELS))) * [1, 2, 3, 4, 5, 6] + [0, 1, 2, 3, 4, 5]
        path = folder / "imu" / f"{i}{suffix}"
        if suffix == ".csv":
            _write_csv(path, CHANNELS, values)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, values)
        files.append(path)
        rows.append([f"s{i % 3}", "walk" if i % 2 else "sit", f"imu/{path.name}", RATE])
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "label", "imu", "imu_hz"])
        writer.writerows(rows)
    return manifest, files


def _card(dataset, stats: ChannelStats) -> ModelCard:
    stream = dataset.stream("imu")
    return ModelCard(
        modality="imu",
        class_names=list(dataset.class_names),
        input_shape=list(dataset.shape("imu")),
        rate_hz=stream.rate_hz,
        recording_rate_hz=stream.recording_rate_hz,
        channels=list(stream.channels) if stream.channels else None,
        normalization=stats.to_dict(),
        architecture={},
        dcat_version="test",
    )


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_training_and_predict_make_bit_identical_inputs_from_one_file(
    tmp_path: Path, suffix: str
) -> None:
    manifest, files = _segmented(tmp_path, suffix)
    dataset = get_dataset("manifest").load(str(manifest), {})
    stats = dataset.fit_normalization("zscore")["imu"]
    trained_on = dataset.normalized({"imu": stats}).inputs["imu"]
    card = _card(dataset, stats)
    assert card.rate_hz == RATE and card.window_samples == STEPS
    assert card.channels == (CHANNELS if suffix == ".csv" else card.channels)
    for i, path in enumerate(files):
        recording = read_recording(path, card)
        # the raw steps: the same numbers the reader stored for training
        stored = dataset.inputs["imu"][i]
        assert np.array_equal(recording.values.T.astype(stored.dtype), stored)
        deployed = window_inputs(card, recording, [recording.start_s])
        assert deployed.shape == (1, len(CHANNELS), STEPS)
        assert deployed.dtype == trained_on.dtype == np.float32
        assert np.array_equal(deployed[0], trained_on[i]), f"sample {i} differs"


def test_predict_normalises_with_the_training_statistics(tmp_path: Path) -> None:
    manifest, files = _segmented(tmp_path, ".csv")
    dataset = get_dataset("manifest").load(str(manifest), {})
    stats = dataset.fit_normalization("minmax")["imu"]
    card = _card(dataset, stats)
    recording = read_recording(files[0], card)
    deployed = window_inputs(card, recording, [0.0])[0]
    by_hand = (recording.values.T - stats.shift[:, None]) / stats.scale[:, None]
    np.testing.assert_allclose(deployed, by_hand, rtol=1e-5, atol=1e-6)
    # training stores float32 inputs, then normalises them
    as_stored = recording.values.T.astype(np.float32)
    assert np.array_equal(deployed, normalize(as_stored, stats.shift, stats.scale))
    # after min-max scaling the training part lies in [-1, 1]
    assert deployed.min() >= -1 - 1e-6 and deployed.max() <= 1 + 1e-6


def test_window_inputs_cut_windows_at_the_nearest_step(tmp_path: Path) -> None:
    manifest, files = _segmented(tmp_path, ".npy")
    dataset = get_dataset("manifest").load(str(manifest), {})
    stats = dataset.fit_normalization("zscore")["imu"]
    card = _card(dataset, stats)
    long = np.concatenate([np.load(f) for f in files[:2]])
    np.save(tmp_path / "long.npy", long)
    recording = read_recording(tmp_path / "long.npy", card)
    starts = [0.0, 0.5, 1.0 + 0.4 / RATE, 10.0]  # 10 s is past the end: the last full window
    windows = window_inputs(card, recording, starts)
    assert windows.shape == (4, len(CHANNELS), STEPS)
    for window, first in zip(windows, [0, 25, 50, len(long) - STEPS], strict=True):
        expected = stats.apply(long[first : first + STEPS].T.astype(np.float32))
        assert np.array_equal(window, expected)
