"""Users' own data through a manifest CSV (dcat.data.manifest)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dcat.data import PairedDataset
from dcat.data.manifest import load_manifest as read_manifest
from dcat.io.resample import resample_linear


def load_manifest(path: Path, **options) -> PairedDataset:
    """The reader with ``min_class_samples=1`` unless given: the fixtures here have classes of
    one trial (the check itself is tested below with the default)."""
    return read_manifest(path, **{"min_class_samples": 1, **options})


def _table(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(str(cell) for cell in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)


def _imu(length: int) -> np.ndarray:
    """(T, 6): channel c is c + t / T, so the resampled values are known."""
    return np.stack([c + np.arange(length) / length for c in range(6)], axis=1)


SEGMENTED_HEADER = ["subject", "recording", "label", "imu", "imu_hz", "audio", "audio_hz"]


def make_segmented(tmp_path: Path) -> Path:
    """Three trials: imu .npy at 50 Hz (100, 110, 90 samples), audio .csv at 20 Hz (40, 44, 36)."""
    folder = tmp_path / "mydata"
    rows = []
    for i, (subject, recording, label, length) in enumerate(
        [("alice", "t1", "walk", 100), ("alice", "t2", "sit", 110), ("bob", "", "walk", 90)]
    ):
        _npy(folder / "imu" / f"{i}.npy", _imu(length))
        audio_length = length * 2 // 5
        t = np.arange(audio_length)
        _table(folder / "audio" / f"{i}.csv", ["left", "right"], np.stack([t, -t], 1).tolist())
        rows.append([subject, recording, label, f"imu/{i}.npy", 50, f"audio/{i}.csv", 20])
    return _table(folder / "manifest.csv", SEGMENTED_HEADER, rows)


@pytest.fixture
def segmented(tmp_path: Path) -> Path:
    return make_segmented(tmp_path)


def _rewrite(manifest: Path, header: list[str] | None = None, edit=None) -> Path:
    """Rewrite the manifest with another header and/or ``edit(rows)`` applied."""
    lines = manifest.read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    if edit is not None:
        edit(rows)
    return _table(manifest, header or lines[0].split(","), rows)


def test_segmented_manifest_with_npy_and_csv_at_different_lengths(segmented: Path) -> None:
    dataset = load_manifest(segmented)
    assert dataset.name == "mydata"
    assert dataset.shape("imu") == (6, 100)  # median of 100, 110, 90
    assert dataset.shape("audio") == (2, 40)  # median of 40, 44, 36
    assert dataset.class_names == ["sit", "walk"]
    assert dataset.labels.tolist() == [1, 0, 1]
    assert dataset.subjects.tolist() == [0, 0, 1]
    assert dataset.subject_names == {0: "alice", 1: "bob"}
    assert dataset.subset([1]).subject_names == {0: "alice", 1: "bob"}
    assert dataset.recordings == ["t1", "t2", "3"]  # an empty recording cell → row number
    np.testing.assert_allclose(dataset.inputs["imu"][1], resample_linear(_imu(110).T, 100))
    t = np.arange(44)
    expected_audio = resample_linear(np.stack([t, -t]).astype(float), 40)
    np.testing.assert_allclose(dataset.inputs["audio"][1], expected_audio)


def test_segmented_steps_classes_and_name_options(segmented: Path) -> None:
    dataset = load_manifest(
        segmented, steps={"imu": 32}, classes=["walk", "sit", "run"], name="mine"
    )
    assert dataset.shape("imu") == (6, 32)
    assert dataset.shape("audio") == (2, 40)
    assert dataset.class_names == ["walk", "sit", "run"]
    assert dataset.labels.tolist() == [0, 1, 0]
    assert dataset.name == "mine"


def test_single_channel_npy_and_rates_are_optional_for_segmented(tmp_path: Path) -> None:
    _npy(tmp_path / "a.npy", np.arange(10.0))
    _npy(tmp_path / "b.npy", np.arange(7, dtype=np.int16))
    rows = [[7, "up", "a.npy"], [7, "up", "b.npy"]]
    manifest = _table(tmp_path / "trials.csv", ["subject", "label", "x"], rows)
    dataset = load_manifest(manifest)
    assert dataset.name == "trials"
    assert dataset.shape("x") == (1, 8)  # median of 10 and 7, rounded half to even
    np.testing.assert_allclose(dataset.inputs["x"][0, 0], np.linspace(0, 9, 8), rtol=1e-6)
    assert dataset.subject_names == {0: "7"}


STREAM_HEADER = ["subject", "recording", "label_file", "imu", "imu_hz", "audio"]


def make_stream(tmp_path: Path) -> Path:
    """Two recordings: imu .npy at 50 Hz, audio .csv with a time column at 16 Hz, label files."""
    folder = tmp_path / "streams"
    rows = []
    for subject, recording, seconds, labels in [
        ("p1", "r1", 10, lambda t: np.where(t < 4.5, "walk", "sit")),
        ("p2", "r2", 4, lambda t: np.full(len(t), "run")),
    ]:
        _npy(folder / "imu" / f"{recording}.npy", _imu(seconds * 50 + 1)[:, :3])
        t = np.arange(seconds * 16 + 1) / 16
        audio = np.stack([t, 2 * t], 1).tolist()
        _table(folder / "audio" / f"{recording}.csv", ["time", "level"], audio)
        label_times = np.arange(seconds * 10) / 10
        label_rows = list(zip(label_times, labels(label_times), strict=True))
        _table(folder / "labels" / f"{recording}.csv", ["time", "label"], label_rows)
        row = [subject, recording, f"labels/{recording}.csv", f"imu/{recording}.npy", 50]
        rows.append([*row, f"audio/{recording}.csv"])
    return _table(folder / "manifest.csv", STREAM_HEADER, rows)


@pytest.fixture
def stream(tmp_path: Path) -> Path:
    return make_stream(tmp_path)


def test_stream_manifest_is_cut_into_labelled_windows(stream: Path) -> None:
    dataset = load_manifest(stream, window_s=2.0, stride_s=1.0)
    # r1: 10 s → 9 windows; r2: 4 s → 3 windows
    assert len(dataset) == 12
    assert dataset.shape("imu") == (3, 100)
    assert dataset.shape("audio") == (1, 32)  # rate 16 Hz inferred from the time column
    assert dataset.class_names == ["run", "sit", "walk"]
    expected = ["walk"] * 4 + ["sit"] * 5 + ["run"] * 3
    assert dataset.labels.tolist() == [dataset.class_names.index(x) for x in expected]
    assert dataset.subjects.tolist() == [0] * 9 + [1] * 3
    assert dataset.recordings == [f"r1_w{k}" for k in range(9)] + [f"r2_w{k}" for k in range(3)]
    starts = np.concatenate([np.arange(9.0), np.arange(3.0)])
    grid = starts[:, None] + (np.arange(32) + 0.5) / 16
    np.testing.assert_allclose(dataset.inputs["audio"][:, 0], 2 * grid, rtol=1e-6)


def test_stream_manifest_with_given_classes_and_stride(stream: Path) -> None:
    classes = ["walk", "sit", "run", "jump"]
    dataset = load_manifest(stream, window_s=1.0, stride_s=0.5, classes=classes)
    assert dataset.class_names == classes
    assert len(dataset) == 19 + 7
    assert dataset.shape("imu") == (3, 50)


def _message(manifest: Path, *parts: str) -> str:
    """A regex that the error names the manifest and each of ``parts`` in that order."""
    return re.escape(str(manifest)) + ".*" + ".*".join(re.escape(p) for p in parts)


def test_missing_required_column(segmented: Path) -> None:
    _rewrite(segmented, ["person", *SEGMENTED_HEADER[1:]])
    with pytest.raises(ValueError, match=_message(segmented, "column 'subject'", "missing")):
        load_manifest(segmented)


def test_both_or_neither_label_columns(segmented: Path) -> None:
    original = segmented.read_text()
    _rewrite(
        segmented, [*SEGMENTED_HEADER, "label_file"], lambda rows: [r.append("l.csv") for r in rows]
    )
    with pytest.raises(ValueError, match=_message(segmented, "'label_file'", "found both")):
        load_manifest(segmented)
    segmented.write_text(original)
    _rewrite(
        segmented,
        [c for c in SEGMENTED_HEADER if c != "label"],
        lambda rows: [r.pop(2) for r in rows],
    )
    with pytest.raises(ValueError, match=_message(segmented, "'label_file'", "found neither")):
        load_manifest(segmented)


def test_unknown_columns_are_listed(segmented: Path) -> None:
    _rewrite(
        segmented,
        [*SEGMENTED_HEADER, "notes", "video_hz"],
        lambda rows: [r.extend(["left wrist", "30"]) for r in rows],
    )
    with pytest.raises(ValueError, match=_message(segmented, "['notes', 'video_hz']")):
        load_manifest(segmented)


def test_missing_file(segmented: Path) -> None:
    (segmented.parent / "audio" / "1.csv").unlink()
    with pytest.raises(ValueError, match=_message(segmented, "row 2", "'audio'", "not found")):
        load_manifest(segmented)


@pytest.mark.parametrize(("file", "content", "parts"), [
    ("imu/0.npy", b"not a numpy file", ("row 1", "'imu'", "0.npy", "cannot read as a .npy")),
    ("audio/2.csv", b"", ("row 3", "'audio'", "2.csv", "empty file")),
    ("audio/2.csv", b"left,right\n", ("row 3", "'audio'", "2.csv", "no data rows")),
    ("audio/0.csv", b"1,2\n3,4\n", ("row 1", "'audio'", "0.csv", "first line must name")),
    ("audio/1.csv", b"left,right\n1,2\n3\n", ("row 2", "'audio'", "row 2 has 1 fields")),
])  # fmt: skip
def test_unreadable_corrupt_or_empty_file(segmented: Path, file, content, parts) -> None:
    (segmented.parent / file).write_bytes(content)
    with pytest.raises(ValueError, match=_message(segmented, *parts)):
        load_manifest(segmented)


def test_empty_npy_array(segmented: Path) -> None:
    _npy(segmented.parent / "imu" / "2.npy", np.zeros((0, 6)))
    with pytest.raises(ValueError, match=_message(segmented, "row 3", "2.npy", "empty array")):
        load_manifest(segmented)


def test_wrong_dtype(segmented: Path) -> None:
    _npy(segmented.parent / "imu" / "1.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match=_message(segmented, "row 2", "'imu'", "wrong dtype <U1")):
        load_manifest(segmented)
    _npy(segmented.parent / "imu" / "1.npy", _imu(110))
    _table(segmented.parent / "audio" / "0.csv", ["left", "right"], [[1, 2], [3, "abc"]])
    with pytest.raises(
        ValueError,
        match=_message(segmented, "row 1", "'audio'", "row 2, column 'right': 'abc'", "dtype"),
    ):
        load_manifest(segmented)


def test_nan_or_inf_names_the_file(segmented: Path) -> None:
    array = _imu(90)
    array[5, 2] = np.nan
    _npy(segmented.parent / "imu" / "2.npy", array)
    with pytest.raises(ValueError, match=_message(segmented, "row 3", "2.npy", "NaN or Inf")):
        load_manifest(segmented)
    _npy(segmented.parent / "imu" / "2.npy", _imu(90))
    _table(segmented.parent / "audio" / "1.csv", ["left", "right"], [[1, 2], ["inf", 4]])
    with pytest.raises(ValueError, match=_message(segmented, "row 2", "1.csv", "NaN or Inf")):
        load_manifest(segmented)


def test_channel_count_differs_between_rows(segmented: Path) -> None:
    _npy(segmented.parent / "imu" / "1.npy", _imu(110)[:, :5])
    with pytest.raises(
        ValueError, match=_message(segmented, "6 channel(s) in row 1 but 5 in row 2")
    ):
        load_manifest(segmented)


def test_modality_present_in_one_row_and_empty_in_another(segmented: Path) -> None:
    def clear(rows):
        rows[1][5] = ""

    _rewrite(segmented, None, clear)
    with pytest.raises(
        ValueError,
        match=_message(segmented, "row 2", "'audio'", "empty in row(s) [2] but filled in"),
    ):
        load_manifest(segmented)


def test_label_not_in_classes(segmented: Path) -> None:
    with pytest.raises(
        ValueError, match=_message(segmented, "row 2", "'label'", "label 'sit' is not one of")
    ):
        load_manifest(segmented, classes=["walk", "run"])


def test_stream_label_not_in_classes_names_the_label_file_row(stream: Path) -> None:
    with pytest.raises(
        ValueError,
        match=_message(stream, "row 1", "'label_file'", "r1.csv: row 46: label 'sit'"),
    ):
        load_manifest(stream, window_s=2.0, stride_s=1.0, classes=["walk", "run"])


def test_duration_mismatch_between_modalities(segmented: Path) -> None:
    t = np.arange(44 * 3 // 2)  # 3.3 s at 20 Hz against imu's 2.2 s
    _table(segmented.parent / "audio" / "1.csv", ["left", "right"], np.stack([t, t], 1).tolist())
    with pytest.raises(
        ValueError, match=_message(segmented, "row 2", "imu 2.2 s, audio 3.3 s", "10%")
    ):
        load_manifest(segmented)
    t = np.arange(46)  # 2.3 s against 2.2 s: within 10 %
    _table(segmented.parent / "audio" / "1.csv", ["left", "right"], np.stack([t, t], 1).tolist())
    assert len(load_manifest(segmented)) == 3


def test_paths_escaping_the_folder(segmented: Path) -> None:
    outside = segmented.parent.parent / "outside.npy"
    _npy(outside, _imu(100))

    def point_outside(rows):
        rows[0][3] = "../outside.npy"

    _rewrite(segmented, None, point_outside)
    with pytest.raises(ValueError, match=_message(segmented, "row 1", "'imu'", "leads outside")):
        load_manifest(segmented)
    assert len(load_manifest(segmented, allow_absolute=True)) == 3

    def absolute(rows):
        rows[0][3] = str(outside)

    _rewrite(segmented, None, absolute)
    with pytest.raises(ValueError, match=_message(segmented, "row 1", "'imu'", "absolute path")):
        load_manifest(segmented)
    assert len(load_manifest(segmented, allow_absolute=True)) == 3

    def down_and_out(rows):  # lexically outside after normalisation
        rows[0][3] = "imu/../../outside.npy"

    _rewrite(segmented, None, down_and_out)
    with pytest.raises(ValueError, match=_message(segmented, "row 1", "'imu'", "leads outside")):
        load_manifest(segmented)
    assert len(load_manifest(segmented, allow_absolute=True)) == 3


def test_symlinks_leading_outside_the_folder(segmented: Path) -> None:
    folder = segmented.parent
    outside = folder.parent / "elsewhere"
    _npy(outside / "0.npy", _imu(100))
    # a file link, then a folder link, both pointing outside the manifest's folder
    (folder / "imu" / "0.npy").unlink()
    (folder / "imu" / "0.npy").symlink_to(outside / "0.npy")
    with pytest.raises(
        ValueError, match=_message(segmented, "row 1", "'imu'", "symbolic link", "outside")
    ):
        load_manifest(segmented)
    assert len(load_manifest(segmented, allow_absolute=True)) == 3

    (folder / "imu" / "0.npy").unlink()
    (folder / "linked").symlink_to(outside, target_is_directory=True)

    def through_folder_link(rows):
        rows[0][3] = "linked/0.npy"

    _rewrite(segmented, None, through_folder_link)
    with pytest.raises(ValueError, match=_message(segmented, "row 1", "symbolic link")):
        load_manifest(segmented)
    assert len(load_manifest(segmented, allow_absolute=True)) == 3


def test_symlinks_inside_the_folder_are_fine(segmented: Path, tmp_path: Path) -> None:
    folder = segmented.parent
    (folder / "imu" / "alias.npy").symlink_to(folder / "imu" / "0.npy")

    def alias(rows):
        rows[0][3] = "imu/alias.npy"

    _rewrite(segmented, None, alias)
    assert len(load_manifest(segmented)) == 3
    # and the manifest's folder itself may be reached through a link
    (tmp_path / "link_to_data").symlink_to(folder, target_is_directory=True)
    assert len(load_manifest(tmp_path / "link_to_data" / "manifest.csv")) == 3


def test_stream_label_file_symlink_outside_is_refused(stream: Path) -> None:
    label_file = stream.parent / "labels" / "r1.csv"
    outside = stream.parent.parent / "r1_labels.csv"
    outside.write_text(label_file.read_text())
    label_file.unlink()
    label_file.symlink_to(outside)
    with pytest.raises(ValueError, match=_message(stream, "row 1", "'label_file'", "symbolic")):
        load_manifest(stream, window_s=2.0, stride_s=1.0)
    assert len(load_manifest(stream, window_s=2.0, stride_s=1.0, allow_absolute=True)) == 12


def test_stream_needs_windows_and_rates(stream: Path) -> None:
    with pytest.raises(ValueError, match=_message(stream, "need window_s and stride_s")):
        load_manifest(stream)
    with pytest.raises(ValueError, match=_message(stream, "steps applies to segmented")):
        load_manifest(stream, window_s=2.0, stride_s=1.0, steps={"imu": 10})

    def no_rate(rows):
        rows[1][4] = ""

    _rewrite(stream, None, no_rate)
    with pytest.raises(ValueError, match=_message(stream, "row 2", "'imu_hz'", "r2.npy")):
        load_manifest(stream, window_s=2.0, stride_s=1.0)


def test_bad_rate_and_segmented_window_options(segmented: Path) -> None:
    with pytest.raises(ValueError, match=_message(segmented, "window_s, stride_s")):
        load_manifest(segmented, window_s=2.0, stride_s=1.0)

    def bad_rate(rows):
        rows[2][4] = "fast"

    _rewrite(segmented, None, bad_rate)
    with pytest.raises(ValueError, match=_message(segmented, "row 3", "'imu_hz'", "'fast'")):
        load_manifest(segmented)


def test_label_file_missing_column(stream: Path) -> None:
    _table(stream.parent / "labels" / "r2.csv", ["time", "activity"], [[0.0, "run"]])
    with pytest.raises(
        ValueError, match=_message(stream, "row 2", "'label_file'", "missing column 'label'")
    ):
        load_manifest(stream, window_s=2.0, stride_s=1.0)


def test_manifest_itself_missing_empty_or_ragged(tmp_path: Path, segmented: Path) -> None:
    with pytest.raises(ValueError, match=r"manifest .*nothing\.csv not found"):
        load_manifest(tmp_path / "nothing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=_message(empty, "empty manifest")):
        load_manifest(empty)
    _rewrite(segmented, None, lambda rows: rows[1].pop())
    with pytest.raises(ValueError, match=_message(segmented, "row 2", "6 fields", "header has 7")):
        load_manifest(segmented)


# --- classes checked where they are read --------------------------------------------------------


def test_a_one_off_label_cell_is_refused_with_its_row(segmented: Path) -> None:
    # the fixture's 'sit' occurs once: the default refuses it, naming the row and column
    with pytest.raises(
        ValueError,
        match=_message(segmented, "row 2, column 'label'", "label 'sit' occurs in 1 sample(s), "
                       "fewer than min_class_samples=2 (a typo?); list the real classes in "
                       "data.options.classes"),
    ):  # fmt: skip
        read_manifest(segmented)
    assert read_manifest(segmented, min_class_samples=1).class_names == ["sit", "walk"]
    with pytest.raises(ValueError, match=r"min_class_samples must be ≥ 1, got 0"):
        read_manifest(segmented, min_class_samples=0)


def test_a_typo_among_listed_classes_names_its_row(segmented: Path) -> None:
    _rewrite(segmented, edit=lambda rows: rows[1].__setitem__(2, "sitt"))
    with pytest.raises(
        ValueError,
        match=_message(segmented, "row 2, column 'label'",
                       "label 'sitt' is not one of the classes ['sit', 'walk']"),
    ):  # fmt: skip
        read_manifest(segmented, classes=["sit", "walk"])


def test_a_one_off_label_in_a_label_file_names_the_file_and_row(stream: Path) -> None:
    labels = stream.parent / "labels" / "r1.csv"
    lines = labels.read_text().splitlines()
    lines[31] = lines[31].replace("walk", "wlak")  # one label sample of 100 in r1
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError,
        match=_message(stream, "row 1, column 'label_file'",
                       f"{labels}: row 31: label 'wlak' occurs in 0 window(s), fewer than "
                       "min_class_samples=2"),
    ):  # fmt: skip
        read_manifest(stream, window_s=2.0, stride_s=1.0)
    # listing the classes turns the same typo into an error on that row, as before
    with pytest.raises(ValueError, match=r"r1\.csv: row 31: label 'wlak' is not one of"):
        read_manifest(stream, window_s=2.0, stride_s=1.0, classes=["run", "sit", "walk"])


def test_a_mistyped_label_column_is_named(segmented: Path) -> None:
    _rewrite(segmented, ["subject", "recording", "lable", *SEGMENTED_HEADER[3:]])
    with pytest.raises(
        ValueError,
        match=_message(segmented, "found neither; did you mean 'label' for 'lable'?"),
    ):
        read_manifest(segmented)


# ---------------------------------------------------------------------------------------------
# Nothing silent (issue 25): duplicated rows, subject spellings, the group column, transposed
# arrays, unreadable .npy files, the default encoder of inertial channels with extras


def _append_rows(manifest: Path, *rows: str) -> Path:
    manifest.write_text(manifest.read_text() + "".join(f"{row}\n" for row in rows))
    return manifest


def _write_subjects(manifest: Path, written: list[str]) -> None:
    def edit(rows: list[list[str]]) -> None:
        for row, subject in zip(rows, written, strict=True):
            row[0] = subject

    _rewrite(manifest, edit=edit)


def test_a_duplicated_row_is_refused_with_both_row_numbers(segmented: Path) -> None:
    # the copy may be written another way and labelled otherwise: still the same sample
    _append_rows(segmented, "carl,t9,sit,./imu/0.npy,50,audio/0.csv,20")
    with pytest.raises(ValueError) as caught:
        load_manifest(segmented)
    assert str(caught.value) == (
        f"{segmented}, row 4: duplicates row 1: the same files (imu './imu/0.npy', audio "
        "'audio/0.csv'), so the same sample twice: it would train twice, and an id split can "
        "put the copies in training and test; remove one, or set data.options.duplicates: keep"
    )
    kept = load_manifest(segmented, duplicates="keep")
    assert len(kept) == 4 and kept.recordings == ["t1", "t2", "3", "t9"]
    np.testing.assert_array_equal(kept.inputs["imu"][3], kept.inputs["imu"][0])
    # one file shared by two rows is not a duplicate when another modality differs
    _rewrite(segmented, edit=lambda rows: rows[3].__setitem__(5, "audio/1.csv"))
    assert len(load_manifest(segmented)) == 4


def test_the_duplicates_option_is_checked_before_reading(segmented: Path) -> None:
    from dcat.data.registry import get_dataset

    with pytest.raises(ValueError, match=r"data\.options\.duplicates: .*'refuse' or 'keep'"):
        get_dataset("manifest").check_options({"duplicates": "drop"})


def test_a_recording_listed_twice_is_refused_unless_another_span_is_labelled(
    stream: Path,
) -> None:
    _append_rows(stream, "p1,r1 again,labels/r1.csv,imu/r1.npy,50,audio/r1.csv")
    with pytest.raises(ValueError, match=_message(
        stream, "row 3: duplicates row 1: the same files and label file (imu 'imu/r1.npy', "
        "audio 'audio/r1.csv')")):  # fmt: skip
        load_manifest(stream, window_s=2.0, stride_s=1.0)
    # the same recording with a label file of another span is another sample: 10 s → 9 windows
    _table(stream.parent / "labels" / "r1_late.csv", ["time", "label"],
           [[t / 10, "run"] for t in range(50, 100)])  # fmt: skip
    _rewrite(stream, edit=lambda rows: rows[2].__setitem__(2, "labels/r1_late.csv"))
    data = load_manifest(stream, window_s=2.0, stride_s=1.0)
    # r1 again: only windows holding its labels (from 5 s), the first starting at 4 s
    assert data.recordings[12:] == [f"r1 again_w{k}" for k in range(5)]


@pytest.mark.parametrize(("written", "odd", "usual", "rows"), [
    (["1", "1", "01"], "01", "1", ("[3]", "[1, 2]")),
    (["Alice", "alice", "alice"], "Alice", "alice", ("[1]", "[2, 3]")),
    (["s 1", "s1", "s1"], "s 1", "s1", ("[1]", "[2, 3]")),
])  # fmt: skip
def test_two_spellings_of_one_subject_are_refused(segmented, written, odd, usual, rows) -> None:
    _write_subjects(segmented, written)
    with pytest.raises(ValueError) as caught:
        load_manifest(segmented)
    assert str(caught.value) == (
        f"{segmented}, row {rows[0][1]}, column 'subject': subject {odd!r} (row(s) {rows[0]}) and "
        f"{usual!r} (row(s) {rows[1]}) differ only in case, spaces or leading zeros; did you mean "
        f"{usual!r}? Names are compared as written, so these would be two subjects: write each "
        "subject one way"
    )


def test_names_that_differ_otherwise_are_two_subjects(segmented: Path) -> None:
    _write_subjects(segmented, ["1", "10", "s1"])
    assert load_manifest(segmented).subject_names == {0: "1", 1: "10", 2: "s1"}


def test_a_session_column_groups_the_samples(segmented: Path) -> None:
    _rewrite(segmented, ["session", *SEGMENTED_HEADER[1:]])
    with pytest.raises(ValueError, match=_message(
        segmented, "column 'subject': missing required column; to keep other groups apart "
        "(sessions, days), name their column in data.options.group")):  # fmt: skip
        load_manifest(segmented)
    data = load_manifest(segmented, group="session")
    assert data.group == "session" and data.subset([0]).group == "session"
    assert data.subject_names == {0: "alice", 1: "bob"}
    with pytest.raises(ValueError, match=_message(
        segmented, "column 'sesion': missing required column (data.options.group names it); "
        "did you mean 'session'?")):  # fmt: skip
        load_manifest(segmented, group="sesion")
    with pytest.raises(ValueError, match=r"^config: data.options.group: 'label' cannot group"):
        load_manifest(segmented, group="label")
    assert load_manifest(make_segmented(segmented.parents[1] / "other")).group == "subject"


def test_a_series_saved_as_channels_by_time_is_named(segmented: Path) -> None:
    path = segmented.parent / "imu" / "1.npy"
    _npy(path, _imu(110).T)
    with pytest.raises(ValueError) as caught:
        load_manifest(segmented)
    assert str(caught.value) == (
        f"{segmented}, row 2: modalities cover different durations (imu 0.12 s, audio 2.2 s), "
        f"more than 10% apart; imu: {path} has shape (6, 110), and its axis 1 (110 steps, "
        "2.2 s at 50 Hz) looks like time: it seems saved as (C, T); save it as (T, C) (array.T)"
    )
    # without rates the channel counts disagree, and the file is named the same way
    _rewrite(segmented, edit=lambda rows: [r.__setitem__(4, "") for r in rows])
    with pytest.raises(ValueError, match=_message(
        segmented, "row 2, column 'imu': modality 'imu' has 6 channel(s) in row 1 but 110 in "
        f"row 2; imu: {path} has shape (6, 110), and its axis 1 (110 steps) looks like time: "
        "it seems saved as (C, T)")):  # fmt: skip
        load_manifest(segmented)


def test_every_recording_saved_as_channels_by_time_is_named(stream: Path) -> None:
    for recording, seconds in (("r1", 10), ("r2", 4)):
        _npy(stream.parent / "imu" / f"{recording}.npy", _imu(seconds * 50 + 1)[:, :3].T)
    expected = _message(
        stream,
        "row 2, column 'imu': modality 'imu' has 501 channel(s) in row 1 but 201 in row 2; imu: ",
        "r1.npy has shape (3, 501), and its axis 1 (501 steps) looks like time",
    )
    with pytest.raises(ValueError, match=expected):
        load_manifest(stream, window_s=2.0, stride_s=1.0)


@pytest.mark.parametrize(("cut", "reason"), [
    (None, "empty file (0 bytes)"),
    (40, "truncated? its header is cut short"),
    (200, "truncated? its header promises float64 (110, 6), 5280 bytes of data, the file holds "
          "72"),
])  # fmt: skip
def test_an_unreadable_npy_says_why(segmented: Path, cut, reason) -> None:
    path = segmented.parent / "imu" / "1.npy"
    path.write_bytes(path.read_bytes()[:cut] if cut else b"")
    expected = _message(segmented, f"row 2, column 'imu': {path}: cannot read as a .npy file")
    with pytest.raises(ValueError, match=expected + re.escape(f" ({reason}")):
        load_manifest(segmented)


def test_inertial_channels_with_extra_channels_get_the_imu_encoder(tmp_path: Path) -> None:
    from dcat.experiment.runner import default_encoder

    folder = tmp_path / "lis"
    triads = [f"{s}_{a}" for s in ("acc", "gyr", "ori") for a in "xyz"]  # the LIS wrist CSV
    mixed = ["acc_x", "acc_y", "acc_z", *(f"emg_{i}" for i in range(1, 5))]
    rows = []
    for i in range(2):
        _table(folder / "wrist" / f"{i}.csv", triads, np.ones((20, 9)).tolist())
        _table(folder / "arm" / f"{i}.csv", mixed, np.ones((20, 7)).tolist())
        rows.append(["anna", "walk", f"wrist/{i}.csv", f"arm/{i}.csv"])
    manifest = _table(folder / "manifest.csv", ["subject", "label", "wrist", "arm"], rows)
    data = load_manifest(manifest)
    assert data.stream("wrist").channels == tuple(triads)
    assert default_encoder(data, "wrist") == "imu"  # 6 of 9 channels in acc/gyr triads
    assert default_encoder(data, "arm") == "sequence"  # 3 of 7: mostly EMG
