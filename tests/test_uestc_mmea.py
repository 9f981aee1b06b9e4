"""The UESTC-MMEA-CL reader (dcat.data.uestc_mmea) on a generated replica of the release layout."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from dcat.data.frame_store import FrameStore
from dcat.data.uestc_mmea import (
    PAPER_8_CLASSES,
    UESTC_CLASSES,
    load_uestc_mmea,
    read_uestc_split,
)

FRAMES = 12  # per generated clip: 1.2 s at 10 fps; the IMU has one row per frame
SMALL = {"frames": 4, "size": (16, 16), "imu_steps": 8}
# (class folder, stem, sample number): the number is the clip's grey level / 20 and the
# accelerometer x value in g, so video and IMU of one sample can be matched
SAMPLES = [
    ("3_drinking", "3_drinking_2022_05_26_16_43_57", 1),
    ("3_drinking", "3_drinking_2022_05_26_16_50_02", 2),
    ("13_play_phone", "13_play_phone_2021_01_05_16_09_02", 3),
    ("27_open_close_door", "27_open_close_door_2022_05_05_16_05_51", 4),
]


def write_mp4(path: Path, level: int, frames: int = FRAMES, fps: int = 10) -> None:
    """A 32 × 32 grey clip of constant level (mpeg4)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        image = np.full((32, 32, 3), level, dtype=np.uint8)
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def write_imu(path: Path, number: int, rows: int = FRAMES) -> None:
    """Raw integers: acc x = number g, acc y = −1 g, acc z = 0; gyro x = 10 · row deg/s."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{16384 * number},-16384,0,{164 * r},0,{-164}" for r in range(rows)]
    path.write_text("\n".join(lines) + "\n")


def _line(prefix: str, class_dir: str, stem: str) -> str:
    label = int(class_dir.split("_")[0]) - 1
    return f"{prefix}/{class_dir}/{stem} {FRAMES} {FRAMES} {label}"


def make_replica(tmp_path: Path) -> Path:
    base = tmp_path / "UESTC-MMEA-CL"
    for class_dir, stem, number in SAMPLES:
        write_mp4(base / "video" / class_dir / f"{stem}.mp4", 20 * number)
        write_imu(base / "sensor" / class_dir / f"{stem}.csv", number)
    train = [SAMPLES[3], SAMPLES[0], SAMPLES[2]]
    # the download's name, with the authors' path prefix, no trailing newline (as released)
    (base / "train.txt").write_text(
        "\n".join(_line("yourdataset_path/data", c, s) for c, s, _ in train)
    )
    # the authors' file name, another machine's prefix
    (base / "mydataset_test.txt").write_text(
        _line("/home/amax/Downloads/dataset/data", *SAMPLES[1][:2]) + "\n\n"
    )
    return base


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_replica(tmp_path)


def _cache(root: Path) -> Path:
    return root.parent / "frames"


def test_paper_classes_are_the_eight_of_section_v_a() -> None:
    assert PAPER_8_CLASSES == (
        "3_drinking", "5_reading", "6_sweep_floor", "7_cut_fruits", "11_wash_hand",
        "14_type_pc", "25_type_phone", "27_open_close_door",
    )  # fmt: skip
    assert len(UESTC_CLASSES) == 32 and all(c in UESTC_CLASSES for c in PAPER_8_CLASSES)


def test_scan_pairs_video_and_imu_and_remaps_the_eight_classes(root: Path) -> None:
    dataset = load_uestc_mmea(root, frame_cache=_cache(root), **SMALL)
    # 13_play_phone is not one of the paper's classes; drinking → 0, open/close door → 7
    assert dataset.recordings == [SAMPLES[0][1], SAMPLES[1][1], SAMPLES[3][1]]
    assert dataset.labels.tolist() == [0, 0, 7]
    assert dataset.class_names == [
        "drinking", "reading", "sweep_floor", "cut_fruits", "wash_hand", "type_pc",
        "type_phone", "open_close_door",
    ]  # fmt: skip
    assert dataset.name == "uestc_mmea"
    assert dataset.subjects.tolist() == [0, 0, 0]
    assert isinstance(dataset.inputs["video"], FrameStore)
    assert dataset.shape("video") == (4, 3, 16, 16)
    assert dataset.shape("imu") == (6, 8)
    for i, number in enumerate([1, 2, 4]):
        item = dataset[i]["inputs"]
        # the clip's grey level and the IMU's acc x both carry the sample number
        assert abs(float(item["video"].mean()) * 255 - 20 * number) < 3
        np.testing.assert_allclose(item["imu"][0].numpy(), number)
        np.testing.assert_allclose(item["imu"][1].numpy(), -1.0)
        np.testing.assert_allclose(item["imu"][4].numpy(), 0.0)
        np.testing.assert_allclose(item["imu"][5].numpy(), -10.0)
        # gyro x = 10 deg/s per row: rows 0..11 resampled to 8 steps by relative position
        np.testing.assert_allclose(item["imu"][3].numpy(), np.linspace(0, 110, 8), atol=1e-4)


def test_split_lists_by_either_name_keep_their_order(root: Path) -> None:
    train = load_uestc_mmea(root, frame_cache=_cache(root), split_file="train", **SMALL)
    assert train.recordings == [SAMPLES[3][1], SAMPLES[0][1]]  # file order, play_phone left out
    assert train.labels.tolist() == [7, 0]
    test = load_uestc_mmea(root, frame_cache=_cache(root), split_file="test", **SMALL)
    assert test.recordings == [SAMPLES[1][1]]
    by_path = load_uestc_mmea(
        root, frame_cache=_cache(root), split_file="mydataset_test.txt", **SMALL
    )
    assert by_path.recordings == test.recordings


def test_all_classes_keep_the_official_labels(root: Path) -> None:
    dataset = load_uestc_mmea(
        root, frame_cache=_cache(root), split_file="train", classes=None, **SMALL
    )
    assert dataset.labels.tolist() == [26, 2, 12]
    assert dataset.class_names[12] == "play_phone"
    assert len(dataset.class_names) == 32


def test_class_subset_by_text_in_given_order(root: Path) -> None:
    dataset = load_uestc_mmea(
        root, frame_cache=_cache(root), classes=["play_phone", "3_drinking"], **SMALL
    )
    assert dataset.class_names == ["play_phone", "drinking"]
    assert dataset.labels.tolist() == [1, 1, 0]  # scanned by class number: 3 before 13


def test_read_split_rows(root: Path) -> None:
    rows = read_uestc_split(root / "train.txt")
    assert rows[0] == ("27_open_close_door", SAMPLES[3][1], 26)
    assert rows[0].label0 == 26 and rows[1].class_dir == "3_drinking"


def test_mpu_folder_and_sensitivities(root: Path) -> None:
    (root / "sensor").rename(root / "mpu")
    dataset = load_uestc_mmea(
        root, frame_cache=_cache(root), sensitivities=(8192, 16.4), classes=["drinking"], **SMALL
    )
    np.testing.assert_allclose(dataset.inputs["imu"][:, 0], [[2.0] * 8, [4.0] * 8])
    (root / "mpu").rename(root / "imu_raw")
    with pytest.raises(ValueError, match=r"no sensor/ or mpu/ folder"):
        load_uestc_mmea(root, frame_cache=_cache(root), **SMALL)
    dataset = load_uestc_mmea(
        root, frame_cache=_cache(root), sensor_dir="imu_raw", classes=["drinking"], **SMALL
    )
    assert len(dataset) == 2


def test_subject_map_csv_and_json(root: Path) -> None:
    csv_map = root.parent / "subjects.csv"
    csv_map.write_text(
        f"subject,sample\n7,{SAMPLES[0][1]}\n3,3_drinking/{SAMPLES[1][1]}.mp4\n7,{SAMPLES[3][1]}\n"
    )
    dataset = load_uestc_mmea(root, frame_cache=_cache(root), subject_map=csv_map, **SMALL)
    assert dataset.subjects.tolist() == [7, 3, 7]
    assert dataset.subject_names == {7: "7", 3: "3"}
    json_map = root.parent / "subjects.json"
    json_map.write_text(
        json.dumps({SAMPLES[0][1]: "bob", SAMPLES[1][1]: "al", SAMPLES[3][1]: "al"})
    )
    dataset = load_uestc_mmea(root, frame_cache=_cache(root), subject_map=json_map, **SMALL)
    assert dataset.subjects.tolist() == [1, 0, 0]
    assert dataset.subject_names == {0: "al", 1: "bob"}


# --- errors ---------------------------------------------------------------------------------


def test_subject_map_missing_sample(root: Path) -> None:
    path = root.parent / "subjects.json"
    path.write_text(json.dumps([{"sample": SAMPLES[0][1], "subject": 1}]))
    with pytest.raises(ValueError, match=r"subjects\.json: 2 loaded sample\(s\) have no subject"):
        load_uestc_mmea(root, frame_cache=_cache(root), subject_map=path, **SMALL)


def test_subject_map_missing_column(root: Path) -> None:
    path = root.parent / "subjects.csv"
    path.write_text(f"sample,person\n{SAMPLES[0][1]},1\n")
    with pytest.raises(ValueError, match=r"subjects\.csv: missing column\(s\) \['subject'\]"):
        load_uestc_mmea(root, frame_cache=_cache(root), subject_map=path, **SMALL)


def test_subject_map_malformed_json(root: Path) -> None:
    path = root.parent / "subjects.json"
    path.write_text('{"a": 1,')
    with pytest.raises(ValueError, match=r"subjects\.json: malformed JSON"):
        load_uestc_mmea(root, frame_cache=_cache(root), subject_map=path, **SMALL)


def test_malformed_split_line(root: Path) -> None:
    (root / "train.txt").write_text(
        _line("p", *SAMPLES[0][:2]) + "\np/3_drinking/3_drinking_2022_05_26_16_50_02 12 2\n"
    )
    with pytest.raises(ValueError, match=r"train\.txt: row 2: expected 4 space-separated fields"):
        load_uestc_mmea(root, frame_cache=_cache(root), split_file="train", **SMALL)


def test_split_line_non_integer_field(root: Path) -> None:
    (root / "train.txt").write_text(f"p/3_drinking/{SAMPLES[0][1]} 12 x 2")
    with pytest.raises(ValueError, match=r"train\.txt: row 1, field 'num_sensor_rows'"):
        load_uestc_mmea(root, frame_cache=_cache(root), split_file="train", **SMALL)


def test_split_label_must_match_class_folder(root: Path) -> None:
    (root / "train.txt").write_text(f"p/3_drinking/{SAMPLES[0][1]} 12 12 5")
    with pytest.raises(ValueError, match=r"row 1, field 'label0': 5 does not match .*expected 2"):
        load_uestc_mmea(root, frame_cache=_cache(root), split_file="train", **SMALL)


def test_split_unknown_class_folder(root: Path) -> None:
    (root / "train.txt").write_text("p/33_dancing/33_dancing_2022 12 12 32")
    with pytest.raises(ValueError, match=r"row 1, field 'path': .*33_dancing"):
        load_uestc_mmea(root, frame_cache=_cache(root), split_file="train", **SMALL)


def test_split_duplicate_row(root: Path) -> None:
    line = _line("p", *SAMPLES[0][:2])
    (root / "train.txt").write_text(f"{line}\n{line}")
    with pytest.raises(ValueError, match=r"row 2: sample .* listed twice \(also row 1\)"):
        load_uestc_mmea(root, frame_cache=_cache(root), split_file="train", **SMALL)


def test_split_list_not_found(root: Path) -> None:
    with pytest.raises(ValueError, match=r"split list 'val' not found: neither .*val\.txt nor"):
        load_uestc_mmea(root, frame_cache=_cache(root), split_file="val", **SMALL)


def test_missing_sensor_pair(root: Path) -> None:
    (root / "sensor" / "3_drinking" / f"{SAMPLES[1][1]}.csv").unlink()
    with pytest.raises(ValueError, match=r"16_50_02\.csv: missing sensor file of sample"):
        load_uestc_mmea(root, frame_cache=_cache(root), **SMALL)


def test_missing_video_of_listed_sample(root: Path) -> None:
    (root / "video" / "27_open_close_door" / f"{SAMPLES[3][1]}.mp4").unlink()
    with pytest.raises(ValueError, match=r"05_51\.mp4: missing video file of sample"):
        load_uestc_mmea(root, frame_cache=_cache(root), split_file="train", **SMALL)


def test_sensor_file_without_video_when_scanning(root: Path) -> None:
    write_imu(root / "sensor" / "3_drinking" / "3_drinking_2023_01_01_00_00_00.csv", 5)
    with pytest.raises(ValueError, match=r"00_00_00\.mp4: missing video file \(its sensor file"):
        load_uestc_mmea(root, frame_cache=_cache(root), **SMALL)


def test_sensor_csv_wrong_column_count(root: Path) -> None:
    path = root / "sensor" / "3_drinking" / f"{SAMPLES[0][1]}.csv"
    lines = path.read_text().splitlines()
    lines[3] = "1,2,3,4,5"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"43_57\.csv: row 4 has 5 fields, expected 6"):
        load_uestc_mmea(root, frame_cache=_cache(root), **SMALL)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # blank rows are not counted: the bad row is the 4th non-blank one
        (lambda lines: [lines[0], "", *lines[1:3], "1,2,nan,4,5,6", *lines[4:]],
         r"43_57\.csv: row 4, column 3 is not finite"),
        (lambda lines: lines[:1], r"43_57\.csv: 1 data row\(s\), expected at least 2"),
        (lambda lines: ["", " "], r"43_57\.csv: 0 data row\(s\), expected at least 2"),
        (lambda lines: [lines[0], "1,2,x,4,5,6"],
         r"43_57\.csv: row 2, column 3: 'x' is not a number \(the files have no header\)"),
    ],
)  # fmt: skip
def test_sensor_csv_bad_values_name_the_row_and_column(root: Path, edit, message: str) -> None:
    path = root / "sensor" / "3_drinking" / f"{SAMPLES[0][1]}.csv"
    path.write_text("\n".join(edit(path.read_text().splitlines())))
    with pytest.raises(ValueError, match=message):
        load_uestc_mmea(root, frame_cache=_cache(root), **SMALL)


def test_subject_map_csv_rows_are_checked(root: Path) -> None:
    path = root.parent / "subjects.csv"
    path.write_text(f"Sample, Subject\n\n{SAMPLES[0][1]},1\n{SAMPLES[1][1]},1,extra\n")
    with pytest.raises(ValueError, match=r"subjects\.csv: row 2 has 3 fields, the header has 2"):
        load_uestc_mmea(root, frame_cache=_cache(root), subject_map=path, **SMALL)
    path.write_text("")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['sample', 'subject'\]"):
        load_uestc_mmea(root, frame_cache=_cache(root), subject_map=path, **SMALL)


def test_sensor_csv_with_a_header_is_refused(root: Path) -> None:
    path = root / "sensor" / "3_drinking" / f"{SAMPLES[0][1]}.csv"
    path.write_text("ax,ay,az,gx,gy,gz\n" + path.read_text())
    with pytest.raises(ValueError, match=r"43_57\.csv: row 1, column 1: 'ax' is not a number"):
        load_uestc_mmea(root, frame_cache=_cache(root), **SMALL)


def test_unknown_class_and_missing_video_folder(root: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown UESTC-MMEA-CL class 'dancing'"):
        load_uestc_mmea(root, frame_cache=_cache(root), classes=["dancing"], **SMALL)
    with pytest.raises(ValueError, match=r"no video/ folder in"):
        load_uestc_mmea(root / "video", frame_cache=_cache(root), **SMALL)
