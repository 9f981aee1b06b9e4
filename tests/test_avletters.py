"""AVLetters reader: generated replicas of the release's files, each error path, real data."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from dcat.data.avletters import (
    AVLETTERS_CLASSES,
    load_avletters,
    read_htk,
    read_lips,
    speaker_ids,
)
from dcat.io.resample import resample_linear

from conftest import shared_dataset

MFCC_KIND = 326  # MFCC_E_D, the kind of every file in the release
PERIOD_100NS = 200_000  # 20 ms


def write_lips(path: Path, vid: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"vid": vid, "siz": np.array([[60.0, 80.0, vid.shape[1]]])})


def write_htk(
    path: Path,
    frames: np.ndarray,
    *,
    period: int = PERIOD_100NS,
    kind: int = MFCC_KIND,
    n_samples: int | None = None,
    sample_size: int | None = None,
    extra: bytes = b"",
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = frames.shape[0] if n_samples is None else n_samples
    size = frames.shape[1] * 4 if sample_size is None else sample_size
    header = struct.pack(">iihh", n, period, size, kind)
    path.write_bytes(header + frames.astype(">f4").tobytes() + extra)


def pattern_vid(frames: int, seed: int) -> np.ndarray:
    """``(4800, frames)`` uint8 with pixel k of frame t = (k + 7 t + seed) mod 256."""
    k = np.arange(4800)[:, None]
    t = np.arange(frames)[None, :]
    return ((k + 7 * t + seed) % 256).astype(np.uint8)


def utterance_mfcc(frames: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(frames, 26)).astype(np.float32)


# Two letters × two speakers; "Bob" sorts after "Amy", so Amy is subject 1 and Bob 2.
REPLICA = {
    "A1_Bob": 14,
    "A1_Amy": 20,
    "C1_Bob": 12,
    "C1_Amy": 17,
}


def make_replica(tmp_path: Path) -> Path:
    for seed, (stem, video_frames) in enumerate(REPLICA.items()):
        write_lips(tmp_path / "Lips" / f"{stem}-lips.mat", pattern_vid(video_frames, seed))
        write_htk(
            tmp_path / "Audio" / "mfcc" / "Clean" / f"{stem}.mfcc",
            utterance_mfcc(2 * video_frames - 1, seed),
        )
    return tmp_path


@pytest.fixture
def replica(tmp_path: Path) -> Path:
    return make_replica(tmp_path)


def test_read_lips_frames_are_fortran_order_columns(tmp_path: Path) -> None:
    vid = pattern_vid(9, seed=3)
    write_lips(tmp_path / "x-lips.mat", vid)
    video = read_lips(tmp_path / "x-lips.mat")
    assert video.shape == (9, 60, 80) and video.dtype == np.uint8
    for t in range(9):
        np.testing.assert_array_equal(video[t], vid[:, t].reshape(60, 80, order="F"))
    # Column-major: walking down a column of the image steps by one pixel of the vector.
    assert video[2, 1, 0] == vid[1, 2] and video[2, 0, 1] == vid[60, 2]


def test_read_htk_round_trip(tmp_path: Path) -> None:
    frames = utterance_mfcc(31, seed=1)
    write_htk(tmp_path / "u.mfcc", frames, period=100_000)
    read, period = read_htk(tmp_path / "u.mfcc")
    assert read.dtype == np.float32 and read.shape == (31, 26)
    np.testing.assert_array_equal(read, frames)
    assert period == pytest.approx(0.01)


def test_load_replica_shapes_labels_subjects(replica: Path) -> None:
    data = load_avletters(replica, frames=8, mfcc_steps=16, lips_size=(15, 20))
    assert data.name == "avletters" and len(data) == 4
    assert data.shape("lips") == (8, 1, 15, 20)
    assert data.shape("mfcc") == (26, 16)
    assert data.class_names == AVLETTERS_CLASSES and data.num_classes == 26
    assert data.class_names[0] == "A" and data.class_names[25] == "Z"
    # Ordered by subject id, then letter.
    assert data.recordings == ["A1_Amy", "C1_Amy", "A1_Bob", "C1_Bob"]
    assert data.labels.tolist() == [0, 2, 0, 2]
    assert data.subjects.tolist() == [1, 1, 2, 2]
    assert speaker_ids(replica) == {"Amy": 1, "Bob": 2}
    assert data.subject_names == {1: "Amy", 2: "Bob"}  # split configs name speakers so
    only_bob = load_avletters(replica, frames=8, mfcc_steps=16, speakers=["Bob"])
    assert only_bob.subjects.tolist() == [2, 2] and only_bob.subject_names == {2: "Bob"}
    lips = data.inputs["lips"]
    assert lips.dtype == np.float32 and lips.min() >= 0.0 and lips.max() <= 1.0


def test_load_replica_mfcc_values(replica: Path) -> None:
    data = load_avletters(replica, mfcc_steps=30)
    index = data.recordings.index("C1_Amy")
    seed = list(REPLICA).index("C1_Amy")
    expected = resample_linear(utterance_mfcc(2 * REPLICA["C1_Amy"] - 1, seed).T, 30)
    np.testing.assert_allclose(data.inputs["mfcc"][index], expected, rtol=1e-6)


def test_lips_unchanged_at_native_size(tmp_path: Path) -> None:
    vid = pattern_vid(11, seed=5)
    write_lips(tmp_path / "Lips" / "Z3_Dan-lips.mat", vid)
    write_htk(tmp_path / "Audio" / "mfcc" / "Clean" / "Z3_Dan.mfcc", utterance_mfcc(21, 0))
    data = load_avletters(tmp_path, frames=11, lips_size=(60, 80))
    expected = read_lips(tmp_path / "Lips" / "Z3_Dan-lips.mat")[:, None] / 255
    np.testing.assert_allclose(data.inputs["lips"][0], expected, atol=1e-6)
    assert data.labels.tolist() == [25] and data.subjects.tolist() == [1]


def test_lips_resampled_linearly_in_time_and_by_area_in_space(tmp_path: Path) -> None:
    # Frame t is uniform with grey level 50 t, so time interpolation is visible exactly.
    levels = np.array([0, 50, 100, 150, 200], dtype=np.uint8)
    vid = np.repeat(levels[None, :], 4800, axis=0)
    write_lips(tmp_path / "Lips" / "B2_Cat-lips.mat", vid)
    write_htk(tmp_path / "Audio" / "mfcc" / "Clean" / "B2_Cat.mfcc", utterance_mfcc(9, 0))
    data = load_avletters(tmp_path, frames=9, lips_size=(6, 8))
    lips = data.inputs["lips"][0]
    assert lips.shape == (9, 1, 6, 8)
    np.testing.assert_allclose(lips[:, 0, 0, 0], np.arange(9) * 25 / 255, atol=1e-6)
    np.testing.assert_allclose(lips, lips[:, :, :1, :1] * np.ones_like(lips), atol=1e-6)
    assert data.labels.tolist() == [1] and data.recordings == ["B2_Cat"]

    # Area resizing by 2 averages each 2 × 2 block of the 60 × 80 image.
    image = np.random.default_rng(0).integers(0, 256, size=(60, 80)).astype(np.uint8)
    blocks = image.reshape(30, 2, 40, 2).mean(axis=(1, 3))
    still = np.repeat(image.reshape(4800, 1, order="F"), 3, axis=1)
    write_lips(tmp_path / "Lips" / "B2_Cat-lips.mat", still)
    write_htk(tmp_path / "Audio" / "mfcc" / "Clean" / "B2_Cat.mfcc", utterance_mfcc(5, 0))
    data = load_avletters(tmp_path, frames=2, lips_size=(30, 40))
    for frame in data.inputs["lips"][0]:
        np.testing.assert_allclose(frame[0], blocks / 255, atol=1e-6)


def test_speaker_filter(replica: Path) -> None:
    data = load_avletters(replica, speakers=["Bob"])
    assert data.recordings == ["A1_Bob", "C1_Bob"]
    assert data.subjects.tolist() == [2, 2]  # ids do not shift when Amy is left out
    with pytest.raises(ValueError, match=r"unknown AVLetters speakers \['Zed'\].*Amy"):
        load_avletters(replica, speakers=["Zed"])


# --- errors -------------------------------------------------------------------------------------


def test_htk_truncated(tmp_path: Path) -> None:
    path = tmp_path / "t.mfcc"
    write_htk(path, utterance_mfcc(10, 0), n_samples=12)
    with pytest.raises(ValueError, match=r"t\.mfcc.*1040 bytes, expected 1248"):
        read_htk(path)


def test_htk_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "t.mfcc"
    write_htk(path, utterance_mfcc(10, 0), extra=b"\0\0")
    with pytest.raises(ValueError, match=r"t\.mfcc.*1042 bytes, expected 1040.*trailing"):
        read_htk(path)


def test_htk_shorter_than_header(tmp_path: Path) -> None:
    path = tmp_path / "t.mfcc"
    path.write_bytes(b"\0" * 7)
    with pytest.raises(ValueError, match=r"t\.mfcc: 7 bytes, shorter than the 12-byte"):
        read_htk(path)


@pytest.mark.parametrize(
    ("n_samples", "sample_size", "message"),
    [(10, 103, "sampSize = 103"), (10, 0, "sampSize = 0"), (0, 104, "nSamples = 0")],
)
def test_htk_bad_header(tmp_path: Path, n_samples: int, sample_size: int, message: str) -> None:
    path = tmp_path / "t.mfcc"
    write_htk(path, utterance_mfcc(10, 0), n_samples=n_samples, sample_size=sample_size)
    with pytest.raises(ValueError, match=rf"t\.mfcc: HTK header has {message}"):
        read_htk(path)


def test_htk_compressed_kind(tmp_path: Path) -> None:
    path = tmp_path / "t.mfcc"
    write_htk(path, utterance_mfcc(10, 0), kind=MFCC_KIND | 0o2000)
    with pytest.raises(ValueError, match=r"t\.mfcc: compressed .* unsupported"):
        read_htk(path)


def test_htk_nan(tmp_path: Path) -> None:
    frames = utterance_mfcc(10, 0)
    frames[4, 7] = np.nan
    write_htk(tmp_path / "t.mfcc", frames)
    with pytest.raises(ValueError, match=r"t\.mfcc: HTK values contain NaN or Inf .*frame 4"):
        read_htk(tmp_path / "t.mfcc")


def test_lips_missing_variable(tmp_path: Path) -> None:
    path = tmp_path / "x-lips.mat"
    scipy.io.savemat(path, {"video": pattern_vid(3, 0), "siz": np.zeros((1, 3))})
    with pytest.raises(ValueError, match=r"x-lips\.mat: variable 'vid' not found .*'siz', 'video'"):
        read_lips(path)


def test_lips_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "x-lips.mat"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"x-lips\.mat: cannot read as a \.mat file"):
        read_lips(path)


def test_lips_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "x-lips.mat"
    write_lips(path, np.zeros((4000, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"x-lips\.mat: vid must have shape \(4800, T ≥ 1\)"):
        read_lips(path)


def test_missing_mfcc_pair(replica: Path) -> None:
    (replica / "Audio" / "mfcc" / "Clean" / "C1_Bob.mfcc").unlink()
    with pytest.raises(ValueError, match=r"C1_Bob\.mfcc: missing MFCC file for utterance C1_Bob"):
        load_avletters(replica)


def test_missing_lips_pair(replica: Path) -> None:
    (replica / "Lips" / "A1_Amy-lips.mat").unlink()
    with pytest.raises(ValueError, match=r"A1_Amy-lips\.mat: missing lips file .* A1_Amy"):
        load_avletters(replica)


def test_duration_mismatch(replica: Path) -> None:
    # 20 video frames = 0.80 s; 20 MFCC frames at 20 ms = 0.40 s.
    write_htk(replica / "Audio" / "mfcc" / "Clean" / "A1_Amy.mfcc", utterance_mfcc(20, 0))
    with pytest.raises(ValueError, match=r"utterance A1_Amy: video lasts 0\.80 s .* MFCC 0\.40 s"):
        load_avletters(replica)
    assert len(load_avletters(replica, max_duration_mismatch=0.5)) == 4


def test_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "Lips").mkdir()
    with pytest.raises(ValueError, match=r"Clean not found \(expected Lips/ and Audio/mfcc/Clean/"):
        load_avletters(tmp_path)


# --- real data ----------------------------------------------------------------------------------


@pytest.mark.data
def test_real_avletters_two_speakers() -> None:
    root = shared_dataset("avletters")
    ids = speaker_ids(root)
    assert len(ids) == 10 and ids["Anya"] == 1 and ids["Yi"] == 10
    data = load_avletters(root, speakers=["Anya", "Yi"])
    lips_files = [
        p for p in (root / "Lips").iterdir() if p.name.endswith(("_Anya-lips.mat", "_Yi-lips.mat"))
    ]
    with open(root / "manifest.csv", newline="") as handle:
        manifest = [row for row in csv.DictReader(handle) if row["speaker"] in {"Anya", "Yi"}]
    assert len(data) == len(lips_files) == len(manifest) == 156
    assert sorted(set(data.labels.tolist())) == list(range(26))
    assert sorted(set(data.subjects.tolist())) == [1, 10]
    assert data.shape("lips") == (24, 1, 30, 40) and data.shape("mfcc") == (26, 48)
    lips = data.inputs["lips"]
    assert lips.min() >= 0.0 and lips.max() <= 1.0 and lips.std() > 0.05
    assert np.isfinite(data.inputs["mfcc"]).all()
    # The manifest's frame counts are the files' own.
    row = next(r for r in manifest if r["lips_file"].endswith("B2_Yi-lips.mat"))
    assert read_lips(root / row["lips_file"]).shape[0] == int(row["video_frames"])
    assert read_htk(root / row["mfcc_file"])[0].shape == (int(row["mfcc_frames"]), 26)


@pytest.mark.data
def test_real_avletters_truncated_audio_is_caught() -> None:
    # M1_Verity's audio stops mid-word: 0.62 s of MFCC against 0.92 s of video.
    root = shared_dataset("avletters")
    with pytest.raises(ValueError, match=r"utterance M1_Verity: video lasts 0\.92 s .* 0\.62 s"):
        load_avletters(root, speakers=["Verity"], max_duration_mismatch=0.25)
    assert len(load_avletters(root, speakers=["Verity"])) == 78  # the default admits it
