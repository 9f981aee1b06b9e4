"""The cough Audio-IMU reader (dcat.data.cough) on a generated replica of the Dryad layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dcat.data.cough import COUGH_BACKGROUND, COUGH_CLASSES, load_cough, read_sync_times

SR = 8000  # the replica's WAV rate (the release has 16 kHz); loaded with audio_rate=SR
IMU_HZ = 100
T0_MS = 1_600_000_000_000  # a real epoch (ms): float seconds since 1970 would lose precision
GYRO_LATE_MS = -500  # the gyroscope file starts 0.5 s before the accelerometer (epoch clock)
INDEX = {name: i for i, name in enumerate(COUGH_CLASSES)}
BACKGROUND = len(COUGH_CLASSES)
FAST = {"window_s": 0.5, "stride_s": 0.5, "audio_rate": SR}


def _segment(start: float, end: float, text: str | None = None, value_id: int = 1) -> dict:
    values: dict = {"id": value_id}
    if text is not None:
        values["value"] = text
    # The key is Audino's label category, not the class (the class is values["value"]).
    return {
        "start_time": start,
        "end_time": end,
        "annotations": {"Sound": {"id": 1, "values": values}},
    }


def _write_wav(path: Path, seconds: float) -> None:
    """A ramp: sample i holds 0.01 · (its time in s), so cut positions can be read back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = round(seconds * SR)
    sf.write(path, 0.01 * np.arange(samples) / SR, SR, subtype="FLOAT")


def _write_metawear(path: Path, unit: str, seconds: float, rate: float, late_ms: int = 0) -> None:
    """Channel x holds the sample's time on the accelerometer's elapsed axis, y = −x, z = 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    elapsed = np.arange(round(seconds * rate) + 1) / rate
    lines = [
        f"epoch (ms),time (-04:00),elapsed (s),x-axis ({unit}),y-axis ({unit}),z-axis ({unit})"
    ]
    for t in elapsed:
        on_acc_axis = t + late_ms / 1000
        lines.append(
            f"{T0_MS + late_ms + round(t * 1000)},2021-06-01T10:00:00.000,{t:.3f},"
            f"{on_acc_axis:.5f},{-on_acc_axis:.5f},1"
        )
    path.write_text("\n".join(lines) + "\n")


def _write_trial(folder: Path, wav_names: list[str], audio_s: float) -> None:
    for name in wav_names:
        _write_wav(folder / name, audio_s)
    _write_metawear(folder / "Accelerometer.csv", "g", 10.0, IMU_HZ)
    _write_metawear(folder / "Gyroscope.csv", "deg/s", 10.0, IMU_HZ, GYRO_LATE_MS)
    _write_metawear(folder / "Magnetometer.csv", "T", 10.0, 25)


def make_replica(tmp_path: Path) -> Path:
    """Subject 005 trials 1 and 2, subject 006 trial 3; 6 s of audio each, 10 s of IMU."""
    base = tmp_path / "Multimodal Cough Dataset"
    s5, s6 = base / "005", base / "006"
    # Case differs from the annotation's name, as in the release ('005_no_talking_in.wav').
    _write_trial(s5 / "Trial_1_No_Talking", ["005_no_talking_in.wav"], 6.0)
    _write_trial(s5 / "Trial_2_Talking", ["005_Talking_In.wav", "005_Talking_Out.wav"], 6.0)
    _write_trial(s6 / "Trial_3_Nonverbal", ["006_Nonverbal_In.wav"], 6.0)
    (s5 / "sync_time.txt").write_text(
        "trial 1  data_label_start 1.0  imu_start 3.0\n"
        "trial 2  data_label_start 0.5  imu_start 0.5\n"
        "trial 3  data_label_start 4.0  imu_start 4.0"  # no trailing newline
    )
    (s6 / "sync_time.txt").write_text("trial 3  data_label_start 2.0  imu_start 1.0\n")
    annotation = [
        {"original_filename": "005_No_Talking_In.wav",
         "segmentations": [_segment(2.0, 3.0, "Cough")]},
        {"original_filename": "005_Talking_Out.wav",
         "segmentations": [_segment(0.0, 1.2, "Speech"), _segment(3.0, 4.0, "laugh"),
                           _segment(5.0, 5.6, None, value_id=3)]},  # id 3 = Sneeze
        {"original_filename": "006_Nonverbal_In.wav",
         "segmentations": [_segment(2.0, 3.0, "Groan")]},
    ]  # fmt: skip
    (base / "DataAnnotation.json").write_text(json.dumps(annotation))
    return base


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_replica(tmp_path)


def _grid(starts: np.ndarray, steps: int, rate: float) -> np.ndarray:
    return starts[:, None] + (np.arange(steps) + 0.5)[None, :] / rate


def test_class_order_is_the_authors() -> None:
    assert COUGH_CLASSES == [
        "Cough", "Speech", "Sneeze", "Deep breath", "Groan", "Laugh", "Speech (far)",
        "Other sound",
    ]  # fmt: skip


def test_windows_labels_subjects_and_recordings(root: Path) -> None:
    dataset = load_cough(root, include_background=True, **FAST)
    # trial 1: audio on the IMU clock [2, 8] s → 12 windows; trial 2: [0, 6] → 12;
    # 006 trial 3: audio [−1, 5], IMU from 0 → [0, 5] → 10 windows
    assert len(dataset) == 34
    assert dataset.shape("imu") == (6, 50)
    assert dataset.shape("audio") == (1, 4000)
    assert dataset.name == "cough"
    assert dataset.class_names == [*COUGH_CLASSES, COUGH_BACKGROUND]
    assert dataset.subjects.tolist() == [5] * 24 + [6] * 10
    assert dataset.subject_names == {5: "005", 6: "006"}
    assert dataset.recordings[:2] == ["005_Trial_1_No_Talking_w0", "005_Trial_1_No_Talking_w1"]
    assert dataset.recordings[-1] == "006_Trial_3_Nonverbal_w9"
    labels = dataset.labels.reshape(-1).tolist()
    b = BACKGROUND
    # trial 1: cough at audio [2, 3) s = IMU [4, 5) s → windows starting at 4.0 and 4.5
    assert labels[:12] == [b] * 4 + [INDEX["Cough"]] * 2 + [b] * 6
    # trial 2 (no shift): speech [0, 1.2) → windows 0, 0.5 (1.0–1.5 is mostly background),
    # laugh [3, 4) → 3.0, 3.5; sneeze (by id) [5, 5.6) → 5.0 (5.5–6 mostly background)
    speech, laugh, sneeze = INDEX["Speech"], INDEX["Laugh"], INDEX["Sneeze"]
    assert labels[12:24] == [speech] * 2 + [b] * 4 + [laugh] * 2 + [b] * 2 + [sneeze] + [b]
    # 006: groan at audio [2, 3) = IMU [1, 2) → windows 1.0 and 1.5
    assert labels[24:] == [b] * 2 + [INDEX["Groan"]] * 2 + [b] * 6


def test_background_windows_are_dropped_by_default(root: Path) -> None:
    dataset = load_cough(root, **FAST)
    assert dataset.class_names == COUGH_CLASSES
    names = [dataset.class_names[i] for i in dataset.labels]
    assert names == ["Cough"] * 2 + ["Speech"] * 2 + ["Laugh"] * 2 + ["Sneeze"] + ["Groan"] * 2
    assert dataset.recordings[:2] == ["005_Trial_1_No_Talking_w4", "005_Trial_1_No_Talking_w5"]


def test_sync_offset_aligns_imu_audio_and_labels(root: Path) -> None:
    dataset = load_cough(root, subjects=[5], include_background=True, **FAST)
    starts = 2.0 + 0.5 * np.arange(12)  # trial 1: t_imu = t_audio − 1.0 + 3.0
    imu, audio = dataset.inputs["imu"][:12], dataset.inputs["audio"][:12]
    # accelerometer x and gyroscope x hold the time on the accelerometer's axis: both match the
    # window grid, so the gyroscope was moved by its 0.5 s epoch offset
    np.testing.assert_allclose(imu[:, 0], _grid(starts, 50, IMU_HZ), atol=1e-4)
    np.testing.assert_allclose(imu[:, 3], _grid(starts, 50, IMU_HZ), atol=1e-4)
    np.testing.assert_allclose(imu[:, 2], 1.0)
    # audio sample j of window k was recorded at t_audio = start − 2.0 + j / SR
    expected = 0.01 * (starts[:, None] - 2.0 + np.arange(4000)[None, :] / SR)
    np.testing.assert_allclose(audio[:, 0], expected, atol=1e-6)
    # the cough windows hold the IMU of t_imu ∈ [4, 5): audio time 2–3 s plus the 2 s shift
    cough = dataset.labels[:12] == INDEX["Cough"]
    assert imu[cough, 0].min() > 4.0 and imu[cough, 0].max() < 5.0
    assert audio[cough, 0].min() >= 0.02 - 1e-6 and audio[cough, 0].max() < 0.03


def test_a_larger_sync_offset_shifts_the_labelled_imu(root: Path) -> None:
    sync = root / "005" / "sync_time.txt"
    sync.write_text(sync.read_text().replace("imu_start 3.0", "imu_start 4.0"))
    dataset = load_cough(root, subjects=["005"], **FAST)
    cough = dataset.labels == INDEX["Cough"]
    imu = dataset.inputs["imu"][cough]
    # one more second of shift: the cough now covers IMU time [5, 6)
    assert cough.sum() == 2
    assert imu[:, 0].min() > 5.0 and imu[:, 0].max() < 6.0


def test_default_windows_follow_table_one(root: Path) -> None:
    dataset = load_cough(root, subjects=[6], audio_rate=SR, include_background=True)
    # IMU 60 samples (0.6 s at 100 Hz), audio 0.5 s centred in it, a window every 0.5 s
    assert dataset.shape("imu") == (6, 60)
    assert dataset.shape("audio") == (1, 4000)
    assert len(dataset) == 9  # span [0, 5]: floor((5 − 0.6) / 0.5) + 1
    starts = 0.5 * np.arange(9)
    np.testing.assert_allclose(dataset.inputs["imu"][:, 0], _grid(starts, 60, IMU_HZ), atol=1e-4)
    # 006's shift is −1 s: audio of a window starting at s begins at t_audio = s + 0.05 + 1
    first = dataset.inputs["audio"][:, 0, 0]
    np.testing.assert_allclose(first, 0.01 * (starts + 1.05), atol=1e-6)


def test_audio_is_resampled_and_magnetometer_is_optional(root: Path) -> None:
    dataset = load_cough(
        root, subjects=[6], window_s=0.5, audio_rate=16000,
        sensors=("accelerometer", "gyroscope", "magnetometer"),
    )  # fmt: skip
    assert dataset.shape("audio") == (1, 8000)
    assert dataset.shape("imu") == (9, 50)
    np.testing.assert_allclose(dataset.inputs["imu"][:, 6], dataset.inputs["imu"][:, 0], atol=0.03)


def test_root_may_be_the_folder_above(root: Path) -> None:
    assert len(load_cough(root.parent, **FAST)) == len(load_cough(root, **FAST))


def test_read_sync_times_is_tolerant_of_spacing(tmp_path: Path) -> None:
    path = tmp_path / "sync_time.txt"
    path.write_text(
        "Trial 2 data_label_start: 5.5 imu_start=10\n\ntrial 1  data_label_start 1e1  imu_start 3\n"
    )
    assert read_sync_times(path) == {2: (5.5, 10.0), 1: (10.0, 3.0)}


# --- errors ---------------------------------------------------------------------------------


def test_missing_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no DataAnnotation\.json in"):
        load_cough(tmp_path)


def test_malformed_json(root: Path) -> None:
    (root / "DataAnnotation.json").write_text('[{"original_filename": "005_x.wav",')
    with pytest.raises(ValueError, match=r"DataAnnotation\.json: malformed JSON at line 1"):
        load_cough(root)


def test_missing_segment_field(root: Path) -> None:
    data = json.loads((root / "DataAnnotation.json").read_text())
    del data[1]["segmentations"][2]["end_time"]
    (root / "DataAnnotation.json").write_text(json.dumps(data))
    with pytest.raises(
        ValueError, match=r"entry 1 \(005_Talking_Out\.wav\), segment 2, field 'end_time'"
    ):
        load_cough(root)


def test_unknown_label(root: Path) -> None:
    data = json.loads((root / "DataAnnotation.json").read_text())
    data[2]["segmentations"][0] = _segment(1.0, 2.0, "Hiccup")
    (root / "DataAnnotation.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"entry 2 .*segment 0.*unknown label 'Hiccup'"):
        load_cough(root)


def test_unknown_label_id(root: Path) -> None:
    data = json.loads((root / "DataAnnotation.json").read_text())
    data[2]["segmentations"][0] = _segment(1.0, 2.0, None, value_id=12)
    (root / "DataAnnotation.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"values\.id': unknown label id 12"):
        load_cough(root)


def test_missing_annotated_wav(root: Path) -> None:
    (root / "006" / "Trial_3_Nonverbal" / "006_Nonverbal_In.wav").unlink()
    with pytest.raises(ValueError, match=r"annotated file 006_Nonverbal_In\.wav .* not found"):
        load_cough(root)


def test_missing_imu_column_by_name(root: Path) -> None:
    path = root / "006" / "Trial_3_Nonverbal" / "Gyroscope.csv"
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace("z-axis (deg/s)", "z-axis (rad/s)")
    path.write_text("\n".join(lines))
    with pytest.raises(
        ValueError, match=r"Gyroscope\.csv: missing column\(s\) \['z-axis \(deg/s\)'\]"
    ):
        load_cough(root)


def test_non_numeric_imu_cell(root: Path) -> None:
    path = root / "006" / "Trial_3_Nonverbal" / "Accelerometer.csv"
    lines = path.read_text().splitlines()
    cells = lines[5].split(",")
    cells[4] = "n/a"
    lines[5] = ",".join(cells)
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"Accelerometer\.csv: row 5, column 'y-axis \(g\)'"):
        load_cough(root)


def test_missing_imu_file(root: Path) -> None:
    (root / "005" / "Trial_2_Talking" / "Accelerometer.csv").unlink()
    with pytest.raises(ValueError, match=r"Accelerometer\.csv: missing accelerometer file"):
        load_cough(root)


def test_malformed_sync_line(root: Path) -> None:
    (root / "006" / "sync_time.txt").write_text("trial 3  data_label_start 2.0  imu 1.0\n")
    with pytest.raises(ValueError, match=r"sync_time\.txt: line 1, field 'imu_start'"):
        load_cough(root)


def test_trial_missing_from_sync_file(root: Path) -> None:
    (root / "006" / "sync_time.txt").write_text("trial 1  data_label_start 2.0  imu_start 1.0\n")
    with pytest.raises(ValueError, match=r"sync_time\.txt: no line for trial 3"):
        load_cough(root)


def test_missing_sync_file(root: Path) -> None:
    (root / "006" / "sync_time.txt").unlink()
    with pytest.raises(ValueError, match=r"006/sync_time\.txt: missing file"):
        load_cough(root)


def test_sync_that_misses_the_imu(root: Path) -> None:
    (root / "006" / "sync_time.txt").write_text("trial 3  data_label_start 0  imu_start 50\n")
    with pytest.raises(ValueError, match=r"trial 3: the audio .* fewer than 2 samples"):
        load_cough(root)


def test_unknown_subject_and_sensor(root: Path) -> None:
    with pytest.raises(ValueError, match=r"subjects \['009'\] not found"):
        load_cough(root, subjects=[9])
    with pytest.raises(ValueError, match=r"sensors must be distinct names"):
        load_cough(root, sensors=("barometer",))


def test_windows_of_different_lengths_share_their_centre(root: Path) -> None:
    dataset = load_cough(
        root, subjects=[6], window_s={"imu": 0.3, "audio": 1.0}, stride_s=1.0, audio_rate=SR,
        include_background=True,
    )  # fmt: skip
    assert dataset.shape("imu") == (6, 30)
    assert dataset.shape("audio") == (1, SR)
    starts = np.arange(len(dataset), dtype=np.float64)  # outer (1 s) windows from IMU time 0
    np.testing.assert_allclose(
        dataset.inputs["imu"][:, 0], _grid(starts + 0.35, 30, IMU_HZ), atol=1e-4
    )
    np.testing.assert_allclose(dataset.inputs["audio"][:, 0, 0], 0.01 * (starts + 1.0), atol=1e-6)
    with pytest.raises(ValueError, match=r"window_s must name 'imu' and 'audio'"):
        load_cough(root, window_s={"imu": 0.5})
