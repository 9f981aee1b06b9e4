"""The smartphone + smartwatch reader (dcat.data.sp_sw_har) on generated and real files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dcat.data.sp_sw_har import SP_SW_HAR_ACTIVITIES, load_sp_sw_har

from conftest import shared_dataset

COLUMNS = ["x_acc", "y_acc", "z_acc", "x_gyro", "y_gyro", "z_gyro", "timestamp", "label"]
T0 = 1657533977813  # a real UNIX ms start time: float seconds since 1970 would lose the ms


def _line(stamps_ms: np.ndarray) -> np.ndarray:
    """Channel c holds c + 0.1 * (seconds since T0), so resampled values are known exactly."""
    seconds = (stamps_ms - T0) / 1000.0
    return np.stack([c + 0.1 * seconds for c in range(6)], axis=1)


def _write(path: Path, stamps_ms, labels, columns=COLUMNS, values=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    values = _line(np.asarray(stamps_ms, dtype=np.float64)) if values is None else values
    cells = {name: values[:, i] for i, name in enumerate(COLUMNS[:6])}
    cells["timestamp"], cells["label"] = stamps_ms, labels
    lines = [",".join(columns)]
    lines += [",".join(str(cells[c][i]) for c in columns) for i in range(len(stamps_ms))]
    path.write_text("\n".join(lines) + "\n")


def _phone_stamps(duration_ms: int) -> np.ndarray:
    """100 Hz, with the device's burst stamping: every 10th sample repeats the previous stamp."""
    stamps = T0 + np.arange(0, duration_ms + 1, 10)
    stamps[5::10] = stamps[4::10][: len(stamps[5::10])]
    return stamps


def _phone_labels(stamps: np.ndarray) -> list[str]:
    seconds = (stamps - T0) / 1000.0
    return ["SEATED" if s < 3.5 else "STANDING_UP" if s < 5.3 else "WALKING" for s in seconds]


def make_replica(tmp_path: Path) -> Path:
    """s01 execution 01 (10 s, three activities) and s02 execution 03 (5 s, one activity)."""
    data = tmp_path / "DATA"
    phone = _phone_stamps(10_000)
    watch = T0 + 3 + np.arange(0, 9_801, 20)  # 50 Hz, 3 ms after the phone
    _write(data / "s01" / "s01_01_sp.csv", phone, _phone_labels(phone))
    shuffled = ["label", "timestamp", *COLUMNS[:6][::-1]]  # columns are found by name
    _write(data / "s01" / "s01_01_sw.csv", watch, ["TURNING"] * len(watch), shuffled)
    phone, watch = _phone_stamps(5_000), T0 + np.arange(0, 5_001, 20)
    _write(data / "s02" / "s02_03_sp.csv", phone, ["SITTING_DOWN"] * len(phone))
    _write(data / "s02" / "s02_03_sw.csv", watch, ["SITTING_DOWN"] * len(watch))
    return tmp_path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_replica(tmp_path)


RATES = {"phone": 100.0, "watch": 50.0}
INDEX = {name: i for i, name in enumerate(SP_SW_HAR_ACTIVITIES)}


def test_class_order_is_fixed() -> None:
    assert SP_SW_HAR_ACTIVITIES == [
        "WALKING", "TURNING", "SEATED", "SITTING_DOWN", "STANDING_UP"
    ]  # fmt: skip


def test_generated_executions_give_windows_labels_subjects_and_recordings(root: Path) -> None:
    dataset = load_sp_sw_har(root, rates=RATES)
    # s01: common span 0.003–9.803 s → 8 windows of 2 s every 1 s; s02: 0–5 s → 4 windows
    assert len(dataset) == 12
    assert dataset.shape("phone") == (6, 200)
    assert dataset.shape("watch") == (6, 100)
    assert dataset.class_names == SP_SW_HAR_ACTIVITIES
    assert dataset.name == "sp_sw_har"
    assert dataset.subjects.tolist() == [1] * 8 + [2] * 4
    assert dataset.recordings == [f"s01_01_w{k}" for k in range(8)] + [
        f"s02_03_w{k}" for k in range(4)
    ]
    expected = ["SEATED"] * 3 + ["STANDING_UP"] * 2 + ["WALKING"] * 3 + ["SITTING_DOWN"] * 4
    assert dataset.labels.tolist() == [INDEX[name] for name in expected]


def test_channels_are_read_by_name_and_resampled_on_the_shared_clock(root: Path) -> None:
    dataset = load_sp_sw_har(root, rates=RATES)
    for modality, rate in RATES.items():
        steps = round(2.0 * rate)
        # the first window starts where both devices have data: 3 ms after the phone's start
        grid = 0.003 + (np.arange(steps) + 0.5) / rate
        expected = np.stack([c + 0.1 * grid for c in range(6)])
        np.testing.assert_allclose(dataset.inputs[modality][0], expected, atol=1e-5)


def test_label_source_selects_whose_labels_are_used(root: Path) -> None:
    dataset = load_sp_sw_har(root, rates=RATES, label_source="watch", subjects=[1])
    assert dataset.labels.tolist() == [INDEX["TURNING"]] * 8


def test_subjects_filter_and_window_options(root: Path) -> None:
    dataset = load_sp_sw_har(root, rates=RATES, subjects=[2], window_s=1.0, stride_s=0.5)
    assert dataset.subjects.tolist() == [2] * 9
    assert dataset.shape("phone") == (6, 100)
    assert dataset.shape("watch") == (6, 50)
    assert load_sp_sw_har(root / "DATA", rates=RATES, subjects=[2]).subjects.tolist() == [2] * 4


def test_long_gaps_drop_windows_by_max_gap(root: Path) -> None:
    stamps = T0 + np.concatenate([np.arange(0, 2_101, 10), np.arange(2_500, 5_001, 10)])
    _write(root / "DATA" / "s02" / "s02_03_sp.csv", stamps, ["SITTING_DOWN"] * len(stamps))
    # the 0.4 s gap (2.1–2.5 s) meets the windows starting at 1 and 2 s, of 0, 1, 2, 3
    assert len(load_sp_sw_har(root, rates=RATES, subjects=[2])) == 2
    assert len(load_sp_sw_har(root, rates=RATES, subjects=[2], max_gap_s=0.5)) == 4


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"sp_sw_har folder .*nowhere not found"):
        load_sp_sw_har(tmp_path / "nowhere")
    (tmp_path / "DATA").mkdir()
    with pytest.raises(ValueError, match=r"no sXX/sXX_YY_sp\.csv or sXX_YY_sw\.csv files found"):
        load_sp_sw_har(tmp_path)


def test_missing_pair_file_is_named(root: Path) -> None:
    (root / "DATA" / "s02" / "s02_03_sw.csv").unlink()
    with pytest.raises(ValueError, match=r"s02_03_sw\.csv: missing file"):
        load_sp_sw_har(root)


def test_missing_column_names_file_and_column(root: Path) -> None:
    path = root / "DATA" / "s02" / "s02_03_sw.csv"
    stamps = T0 + np.arange(0, 5_001, 20)
    _write(path, stamps, ["SEATED"] * len(stamps), [c for c in COLUMNS if c != "z_gyro"])
    with pytest.raises(ValueError, match=r"s02_03_sw\.csv: missing column\(s\) \['z_gyro'\]"):
        load_sp_sw_har(root)


def test_unknown_label_names_file_row_and_value(root: Path) -> None:
    stamps = T0 + np.arange(0, 5_001, 20)
    labels = ["SEATED"] * len(stamps)
    labels[6] = "JUMPING"
    _write(root / "DATA" / "s02" / "s02_03_sw.csv", stamps, labels)
    with pytest.raises(ValueError, match=r"s02_03_sw\.csv: row 7, column 'label': .*'JUMPING'"):
        load_sp_sw_har(root)


def test_empty_file_is_named(root: Path) -> None:
    (root / "DATA" / "s01" / "s01_01_sp.csv").write_text("")
    with pytest.raises(ValueError, match=r"s01_01_sp\.csv: empty file"):
        load_sp_sw_har(root)
    (root / "DATA" / "s01" / "s01_01_sp.csv").write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(ValueError, match=r"s01_01_sp\.csv: no data rows"):
        load_sp_sw_har(root)


def test_bad_numbers_are_named_by_row_and_column(root: Path) -> None:
    path = root / "DATA" / "s02" / "s02_03_sp.csv"
    lines = path.read_text().splitlines()
    fields = lines[3].split(",")
    fields[1] = "abc"
    lines[3] = ",".join(fields)
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"s02_03_sp\.csv: row 3, column 'y_acc': 'abc' is not"):
        load_sp_sw_har(root)
    fields[1] = "nan"
    lines[3] = ",".join(fields)
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"s02_03_sp\.csv: row 3, column 'y_acc' is not finite"):
        load_sp_sw_har(root)


def test_bad_options(root: Path) -> None:
    with pytest.raises(ValueError, match=r"subjects \[5\] not found"):
        load_sp_sw_har(root, subjects=[5])
    with pytest.raises(ValueError, match="label_source must be 'phone' or 'watch'"):
        load_sp_sw_har(root, label_source="both")
    with pytest.raises(ValueError, match="rates must name 'phone' and 'watch' only"):
        load_sp_sw_har(root, rates={"tablet": 50.0})
    with pytest.raises(ValueError, match=r"no windows of 20\.0 s fit"):
        load_sp_sw_har(root, window_s=20.0)


@pytest.mark.data
def test_real_data_two_subjects() -> None:
    dataset = load_sp_sw_har(shared_dataset("sp_sw_har"), subjects=[1, 2])
    assert len(dataset) > 100
    for modality in ("phone", "watch"):
        array = dataset.inputs[modality]
        assert array.shape[1:] == (6, 200)
        assert np.isfinite(array).all()
    assert set(dataset.subjects.tolist()) == {1, 2}
    assert set(dataset.labels.tolist()) == set(range(5))
    assert all(re.fullmatch(r"s0[12]_\d\d_w\d+", r) for r in dataset.recordings)
    # gravity: the phone's acceleration magnitude averages about 9.8 m/s²
    magnitude = np.linalg.norm(dataset.inputs["phone"][:, :3], axis=1).mean()
    assert 8.5 < magnitude < 11.0
