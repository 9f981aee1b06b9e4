"""UESTC-MMEA-CL (Xu et al., IEEE TMM 2024): egocentric video + IMU from smart glasses, 32 classes.

Files as released (the project's download page and the authors' code)::

    <root>/train.txt, val.txt, test.txt        (or mydataset_train.txt, ... in the authors' code)
    <root>/video/<n>_<name>/<n>_<name>_YYYY_MM_DD_hh_mm_ss.mp4     25 fps
    <root>/sensor/<n>_<name>/<same stem>.csv                       (``mpu/`` in some copies)

A sensor CSV has no header and six columns of raw integers: accelerometer x, y, z and gyroscope
x, y, z, at ~25 Hz, one row per video frame (the list files' frame and row counts agree within
±2), so the two files of a sample cover the same interval. Each sample is one whole clip (6.8–37 s):
its video is sampled to ``frames`` evenly spaced frames and its IMU resampled to ``imu_steps``
steps by relative position (:func:`~dcat.io.resample.resample_linear`), which keeps the two
aligned. The release has no subject ids (only class and recording time in the names), so only
in-distribution splits are possible unless a ``subject_map`` is given. Academic use only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dcat.data.assemble import Recording, assemble
from dcat.data.frame_store import FrameStore, VideoClip, frame_channels
from dcat.data.paired import PairedDataset, StreamInfo
from dcat.data.registry import register_dataset
from dcat.errors import DcatError
from dcat.io.resample import resample_linear
from dcat.io.table import read_rows

__all__ = [
    "PAPER_8_CLASSES",
    "UESTC_CLASSES",
    "UESTCSample",
    "load_uestc_mmea",
    "read_subject_map",
    "read_uestc_imu",
    "read_uestc_split",
]

# Class folders; folder ``n_name`` has the official label ``n − 1``.
UESTC_CLASSES = [
    "1_upstairs", "2_downstairs", "3_drinking", "4_fall", "5_reading", "6_sweep_floor",
    "7_cut_fruits", "8_mop_floor", "9_writing", "10_wipe_table", "11_wash_hand", "12_standing",
    "13_play_phone", "14_type_pc", "15_eating", "16_cooking", "17_pick_up_phone",
    "18_drop_trush", "19_fold_clothes", "20_walking", "21_play_card", "22_brush_teeth",
    "23_wash_dish", "24_moving_sth", "25_type_phone", "26_chat", "27_open_close_door",
    "28_ride_bike", "29_sit_stand", "30_take_drop_sth", "31_shopping", "32_watch_TV",
]  # fmt: skip
# The paper's 8 classes (§V-A: drinking, reading, floor sweeping, cutting fruits, washing hands,
# typing on a laptop, typing on a phone, opening/closing a door), in that order, which is also
# the official class-number order; they become labels 0–7. ``13_play_phone`` is not one of them.
PAPER_8_CLASSES = (
    "3_drinking", "5_reading", "6_sweep_floor", "7_cut_fruits", "11_wash_hand", "14_type_pc",
    "25_type_phone", "27_open_close_door",
)  # fmt: skip
# (accelerometer, gyroscope) raw units per g and per deg/s: the website's documented values.
# The authors' code uses 8192 for the accelerometer; with per-channel normalisation the choice
# does not matter.
DEFAULT_SENSITIVITIES = (16384.0, 16.4)
SENSOR_HZ = 25.0  # the sensor files' rate: one row per video frame
IMU_CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
_SPLIT_NAMES = ("train", "val", "test")
_CLASS_DIR = {name.lower(): name for name in UESTC_CLASSES}
_CLASS_TEXT = {name.split("_", 1)[1].lower(): name for name in UESTC_CLASSES}
_SAMPLE = tuple[str, str]  # (class folder, stem)


class UESTCSample(NamedTuple):
    """One row of a split list.

    Attributes:
        class_dir: The class folder, e.g. ``"3_drinking"``.
        stem: The sample's file stem, e.g. ``"3_drinking_2022_05_26_16_43_57"``.
        label0: The official label, class number − 1.
    """

    class_dir: str
    stem: str
    label0: int


def _class_number(class_dir: str) -> int:
    return int(class_dir.split("_", 1)[0])


def read_uestc_split(path: str | Path) -> list[UESTCSample]:
    """Read an official split list (``train.txt`` or ``mydataset_train.txt``, ...).

    Each non-empty line is ``<path> <num_rgb_frames> <num_sensor_rows> <label0>``, e.g.
    ``yourdataset_path/data/3_drinking/3_drinking_2022_05_26_16_43_57 415 415 2``. The path prefix
    varies between copies, so only its last two components (class folder, stem) are used.

    Returns:
        The samples in file order.

    Raises:
        DcatError: A line with another number of fields, a path without a known class folder,
            a non-integer count or label, a label that is not the class number − 1, or a sample
            listed twice (file, row from 1 and field named).
    """
    path = Path(path)
    samples: list[UESTCSample] = []
    first_row: dict[_SAMPLE, int] = {}
    for row, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4:
            raise DcatError(
                f"{path}: row {row}: expected 4 space-separated fields '<path> "
                f"<num_rgb_frames> <num_sensor_rows> <label0>', got {len(fields)} in {line!r}"
            )
        parts = [p for p in fields[0].replace("\\", "/").split("/") if p]
        class_dir = _CLASS_DIR.get(parts[-2].lower()) if len(parts) >= 2 else None
        if class_dir is None:
            raise DcatError(
                f"{path}: row {row}, field 'path': {fields[0]!r} does not end in "
                f"<class folder>/<sample> with a class folder of UESTC_CLASSES"
            )
        stem = parts[-1]
        for suffix in (".mp4", ".csv"):
            stem = stem.removesuffix(suffix)
        for index, field in ((1, "num_rgb_frames"), (2, "num_sensor_rows"), (3, "label0")):
            if not re.fullmatch(r"[-+]?\d+", fields[index]):
                raise DcatError(
                    f"{path}: row {row}, field {field!r}: expected an integer, got "
                    f"{fields[index]!r}"
                )
        label0 = int(fields[3])
        if label0 != _class_number(class_dir) - 1:
            raise DcatError(
                f"{path}: row {row}, field 'label0': {label0} does not match class folder "
                f"{class_dir} (expected {_class_number(class_dir) - 1})"
            )
        key = (class_dir, stem)
        if key in first_row:
            raise DcatError(
                f"{path}: row {row}: sample {class_dir}/{stem} is listed twice (also row "
                f"{first_row[key]})"
            )
        first_row[key] = row
        samples.append(UESTCSample(class_dir, stem, label0))
    if not samples:
        raise DcatError(f"{path}: empty split list (expected '<path> <frames> <rows> <label>')")
    return samples


def read_uestc_imu(
    path: str | Path, sensitivities: tuple[float, float] = DEFAULT_SENSITIVITIES
) -> np.ndarray:
    """Read one header-less sensor CSV and scale it to physical units.

    Args:
        path: A ``sensor/<class>/<stem>.csv`` file: six comma-separated raw integers per row.
        sensitivities: Raw units per g (accelerometer) and per deg/s (gyroscope).

    Returns:
        ``(6, T)`` float32: accelerometer x, y, z in g, gyroscope x, y, z in deg/s.

    Raises:
        DcatError: Fewer than 2 rows, a row without 6 fields, or a non-numeric or non-finite
            value (file, row from 1 and column from 1 named).
    """
    path = Path(path)
    rows = read_rows(
        path,
        header=False,
        fields=6,
        hint=" (acc x, y, z, gyro x, y, z; the files have no header)",
        count_skipped=False,
        empty="0 data row(s), expected at least 2",
    )
    if len(rows.cells) < 2:
        raise DcatError(f"{path}: {len(rows.cells)} data row(s), expected at least 2")
    values = rows.numeric(names=range(1, 7), note=" (the files have no header)")
    acc, gyro = (float(s) for s in sensitivities)
    scale = np.array([acc] * 3 + [gyro] * 3)
    return (values / scale).T.astype(np.float32)


def _sample_key(text: str) -> str:
    """A sample id as the map may write it (stem, ``class/stem``, a file) → its stem."""
    name = text.strip().replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".mp4", ".csv"):
        name = name.removesuffix(suffix)
    return name


def read_subject_map(path: str | Path) -> dict[str, str]:
    """Read a sample → subject mapping (the release has none).

    Args:
        path: ``.json``: an object ``{"<sample>": subject, ...}`` or a list of
            ``{"sample": .., "subject": ..}``; anything else: a CSV with a header naming the
            columns ``sample`` and ``subject`` (other columns are ignored). A sample is its stem
            (``3_drinking_2022_05_26_16_43_57``), ``class/stem`` or a file path.

    Returns:
        Sample stem → subject name (as text).

    Raises:
        DcatError: Malformed JSON or CSV, a missing column or field, an empty subject, or a
            sample given two different subjects (file and row or entry named).
    """
    path = Path(path)
    pairs: list[tuple[str, object, str]] = []  # (sample, subject, where)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DcatError(
                f"{path}: malformed JSON at line {err.lineno}, column {err.colno} ({err.msg})"
            ) from err
        if isinstance(data, Mapping):
            pairs = [(str(k), v, f"key {k!r}") for k, v in data.items()]
        elif isinstance(data, list):
            for i, item in enumerate(data):
                if not isinstance(item, Mapping) or "sample" not in item or "subject" not in item:
                    raise DcatError(
                        f"{path}: entry {i}: expected an object with 'sample' and 'subject', "
                        f"got {item!r}"
                    )
                pairs.append((str(item["sample"]), item["subject"], f"entry {i}"))
        else:
            raise DcatError(
                f"{path}: expected a JSON object {{sample: subject}} or a list of "
                f"{{'sample', 'subject'}} objects, got {type(data).__name__}"
            )
    else:
        table = read_rows(
            path,
            header=True,
            header_key=lambda cell: cell.strip().lower(),
            count_skipped=False,
            require=("sample", "subject"),
            empty="missing column(s) ['sample', 'subject'] (header is [])",
            no_rows=None,
            ragged="has {count} fields, the header has {width}",
        )
        samples, subjects = table.text("sample"), table.text("subject")
        pairs = [
            (sample, subject, f"row {row}")
            for sample, subject, row in zip(samples, subjects, table.row_numbers, strict=True)
        ]
    out: dict[str, str] = {}
    for sample, subject, where in pairs:
        key = _sample_key(sample)
        name = str(subject).strip() if isinstance(subject, str | int) else ""
        if not key or not name or isinstance(subject, bool):
            raise DcatError(
                f"{path}: {where}, field 'subject': expected a sample and a subject id (text or "
                f"integer), got {sample!r} → {subject!r}"
            )
        if out.get(key, name) != name:
            raise DcatError(
                f"{path}: {where}: sample {key} has two subjects, {out[key]!r} and {name!r}"
            )
        out[key] = name
    if not out:
        raise DcatError(f"{path}: no sample → subject entries")
    return out


def _resolve_classes(classes: Sequence[str] | None) -> list[str]:
    if classes is None:
        return list(UESTC_CLASSES)
    resolved = []
    for name in classes:
        key = str(name).strip().lower()
        found = _CLASS_DIR.get(key) or _CLASS_TEXT.get(key)
        if found is None:
            raise DcatError(
                f"unknown UESTC-MMEA-CL class {name!r} (expected a folder name of UESTC_CLASSES, "
                "e.g. '3_drinking', or its text, e.g. 'drinking')"
            )
        resolved.append(found)
    if len(set(resolved)) != len(resolved) or not resolved:
        raise DcatError(f"classes must be distinct and non-empty, got {list(classes)}")
    return resolved


def _split_path(root: Path, split_file: str | Path) -> Path:
    if str(split_file) in _SPLIT_NAMES:
        # The download's name, then the name in the authors' code.
        for name in (f"{split_file}.txt", f"mydataset_{split_file}.txt"):
            if (root / name).is_file():
                return root / name
        raise DcatError(
            f"split list {split_file!r} not found: neither {root / f'{split_file}.txt'} nor "
            f"{root / f'mydataset_{split_file}.txt'} exists"
        )
    path = Path(split_file)
    if not path.is_absolute() and not path.is_file():
        path = root / path
    if not path.is_file():
        raise DcatError(f"split list {split_file} not found (also looked in {root})")
    return path


def _sensor_folder(root: Path, sensor_dir: str | Path | None) -> Path:
    if sensor_dir is not None:
        folder = Path(sensor_dir)
        folder = folder if folder.is_absolute() else root / folder
        if not folder.is_dir():
            raise DcatError(f"sensor folder {folder} not found")
        return folder
    # Official name first; two lab repositories call it mpu/.
    for name in ("sensor", "mpu"):
        if (root / name).is_dir():
            return root / name
    raise DcatError(f"UESTC-MMEA-CL: no sensor/ or mpu/ folder in {root}")


def _scan(video_dir: Path, sensor_dir: Path, classes: Sequence[str]) -> list[_SAMPLE]:
    """Every sample of ``classes`` found on disk, by class number then stem."""
    samples: list[_SAMPLE] = []
    for class_dir in sorted(classes, key=_class_number):
        videos = {p.stem for p in (video_dir / class_dir).glob("*.mp4")}
        sensors = {p.stem for p in (sensor_dir / class_dir).glob("*.csv")}
        orphans = sorted(sensors - videos)
        if orphans:
            raise DcatError(
                f"{video_dir / class_dir / (orphans[0] + '.mp4')}: missing video file "
                f"(its sensor file is present; {len(orphans)} such sample(s) in {class_dir})"
            )
        samples.extend((class_dir, stem) for stem in sorted(videos))
    return samples


@register_dataset(
    "uestc_mmea",
    summary="UESTC-MMEA-CL: egocentric video + IMU from smart glasses, 32 classes (paper: 8)",
    root_defaults={"frame_cache": ".dcat_frames"},
)
def load_uestc_mmea(
    root: str | Path,
    *,
    frame_cache: str | Path,
    split_file: str | Path | None = None,
    classes: Sequence[str] | None = PAPER_8_CLASSES,
    frames: int = 30,
    size: tuple[int, int] = (224, 224),
    imu_steps: int = 70,
    sensitivities: tuple[float, float] = DEFAULT_SENSITIVITIES,
    subject_map: str | Path | None = None,
    sensor_dir: str | Path | None = None,
    grayscale: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PairedDataset:
    """Read UESTC-MMEA-CL into a :class:`PairedDataset` with modalities ``video`` and ``imu``.

    Defaults follow the paper: its 8-class subset (§V-A), 30 frames per clip (Table I,
    UESTC-Video "Window/Stride Length" 30) at 224 × 224 (§V-B), and 70 IMU steps per clip
    (Table I, UESTC-IMU 70). The IMU records ~25 Hz over clips of 16.8 s on average (~420
    rows), so 70 steps are ~4 per second; pass a larger ``imu_steps`` to keep more detail.

    Args:
        root: The data set folder holding ``video/`` and ``sensor/`` (or ``mpu/``).
        frame_cache: Folder of the decoded-frame cache (:class:`~dcat.data.frame_store.FrameStore`);
            each clip is decoded once, later calls with the same files and options reuse it.
        split_file: ``None``: every sample of ``classes`` found under ``video/``; ``"train"``,
            ``"val"`` or ``"test"``: the official list ``<root>/<name>.txt`` or
            ``<root>/mydataset_<name>.txt``; or a path to such a list (relative to ``root`` if
            not found as given). Rows of other classes are left out; unlike the authors'
            loader, rows with fewer than 3 frames are kept (the official lists have none).
        classes: Class folders (``"3_drinking"``) or their text (``"drinking"``) to keep;
            labels are their positions in this sequence. ``None``: all 32, label = class
            number − 1 (the official label).
        frames: Frames per clip, evenly spaced over the whole clip.
        size: ``(H, W)`` of the frames.
        imu_steps: IMU steps per clip, resampled by relative position.
        sensitivities: Raw units per g and per deg/s; default the website's 16384 and 16.4
            (the authors' code uses 8192 for the accelerometer).
        subject_map: A CSV or JSON file mapping samples to subjects
            (:func:`read_subject_map`); every loaded sample must be in it. Without it every
            subject is 0 and only in-distribution splits are possible.
        sensor_dir: The IMU folder (name under ``root`` or a path); default ``sensor/``, else
            ``mpu/``.
        grayscale: Decode frames as luma (``C = 1``).
        progress: ``progress(done, total)`` while clips are decoded.

    Returns:
        ``video`` a :class:`~dcat.data.frame_store.FrameStore` ``(N, frames, C, H, W)`` (float32 in
        ``[0, 1]`` per sample), ``imu`` ``(N, 6, imu_steps)`` float32 (acc x, y, z in g, gyro
        x, y, z in deg/s); labels index ``class_names`` (the class folders' text, e.g.
        ``"drinking"``, in ``classes`` order); recordings the sample stems.

    Raises:
        DcatError: A missing folder, list or file (a sample without its video or sensor file
            is named), a malformed list, sensor file or subject map (file, row and field named),
            an unknown class, a sample missing from the subject map, or no samples.
    """
    root = Path(root)
    video_dir, sensors = _checked(root, sensor_dir, sensitivities, imu_steps)
    wanted = _resolve_classes(classes)
    samples = _select_samples(root, video_dir, sensors, split_file, wanted)
    read = _read_samples(video_dir, sensors, samples, wanted, sensitivities, int(imu_steps))
    subjects, subject_names = _subjects(read.stems, subject_map)
    store = FrameStore.build(
        read.clips, frame_cache, frames=frames, size=size, grayscale=grayscale, progress=progress
    )
    streams = _streams(frames, int(imu_steps), read.seconds, grayscale)
    return _dataset(read, subjects, subject_names, store, wanted, streams)


def _checked(
    root: Path,
    sensor_dir: str | Path | None,
    sensitivities: tuple[float, float],
    imu_steps: int,
) -> tuple[Path, Path]:
    """Check the folders and IMU options of :func:`load_uestc_mmea` before anything is read.

    Returns:
        The video folder and the sensor folder.

    Raises:
        DcatError: A missing folder, sensitivities that are not two positive numbers, or
            ``imu_steps`` that is not a positive integer.
    """
    video_dir = root / "video"
    if not video_dir.is_dir():
        raise DcatError(f"UESTC-MMEA-CL: no video/ folder in {root}")
    sensors = _sensor_folder(root, sensor_dir)
    if len(sensitivities) != 2 or not all(float(s) > 0 for s in sensitivities):
        raise DcatError(f"sensitivities must be two positive numbers, got {sensitivities!r}")
    if int(imu_steps) != imu_steps or imu_steps < 1:
        raise DcatError(f"imu_steps must be a positive integer, got {imu_steps!r}")
    return video_dir, sensors


def _select_samples(
    root: Path,
    video_dir: Path,
    sensor_dir: Path,
    split_file: str | Path | None,
    wanted: Sequence[str],
) -> list[_SAMPLE]:
    """The samples of the classes ``wanted``: all found on disk (``split_file`` ``None``, by
    class number then stem) or those of a split list, in its order.

    Raises:
        DcatError: A missing or malformed split list, a sensor file without its video (when
            scanning), or no sample.
    """
    if split_file is None:
        samples = _scan(video_dir, sensor_dir, wanted)
        source = str(video_dir)
    else:
        path = _split_path(root, split_file)
        samples = [(s.class_dir, s.stem) for s in read_uestc_split(path) if s.class_dir in wanted]
        source = str(path)
    if not samples:
        raise DcatError(f"no UESTC-MMEA-CL samples of classes {wanted} in {source}")
    return samples


class _Read(NamedTuple):
    """What the samples' files gave, in sample order.

    Attributes:
        stems: Each sample's file stem.
        labels: Each sample's position in the classes asked for.
        imu: Each sample's IMU ``(6, imu_steps)`` float32.
        seconds: Each sample's duration (its sensor rows at 25 Hz).
        clips: Each sample's video, still to be decoded.
    """

    stems: list[str]
    labels: list[int]
    imu: list[np.ndarray]
    seconds: list[float]
    clips: list[VideoClip]


def _read_samples(
    video_dir: Path,
    sensor_dir: Path,
    samples: Sequence[_SAMPLE],
    wanted: Sequence[str],
    sensitivities: tuple[float, float],
    imu_steps: int,
) -> _Read:
    """Read every sample's IMU (the videos are decoded later, by the frame store).

    Raises:
        DcatError: A sample without its video or sensor file (named), or a malformed sensor file.
    """
    label_of = {class_dir: i for i, class_dir in enumerate(wanted)}
    read = _Read([], [], [], [], [])
    for class_dir, stem in samples:
        video = video_dir / class_dir / f"{stem}.mp4"
        sensor = sensor_dir / class_dir / f"{stem}.csv"
        for path, what in ((video, "video"), (sensor, "sensor")):
            if not path.is_file():
                raise DcatError(f"{path}: missing {what} file of sample {class_dir}/{stem}")
        raw = read_uestc_imu(sensor, sensitivities)
        read.stems.append(stem)
        read.labels.append(label_of[class_dir])
        read.imu.append(resample_linear(raw, imu_steps))
        read.seconds.append(raw.shape[1] / SENSOR_HZ)  # one sensor row per video frame
        read.clips.append(VideoClip(video))
    return read


def _streams(
    frames: int, imu_steps: int, seconds: Sequence[float], grayscale: bool
) -> dict[str, StreamInfo]:
    """The ``video`` and ``imu`` streams: whole clips of ``seconds`` each, resampled."""
    return {
        "video": StreamInfo.of_trials(
            frames, seconds, frame_channels(grayscale), "25 fps", native_hz=25.0, kind="video"
        ),
        "imu": StreamInfo.of_trials(imu_steps, seconds, IMU_CHANNELS, "~25 Hz"),
    }


def _dataset(
    read: _Read,
    subjects: np.ndarray,
    subject_names: dict[int, str],
    store: FrameStore,
    wanted: Sequence[str],
    streams: dict[str, StreamInfo],
) -> PairedDataset:
    """The data set: ``video`` the frames in ``store``, ``imu`` ``(N, 6, imu_steps)``; class
    names the text of the class folders ``wanted`` (``"drinking"``)."""
    recordings = (
        Recording({"imu": imu}, label, int(subject), stem)
        for imu, label, subject, stem in zip(
            read.imu, read.labels, subjects, read.stems, strict=True
        )
    )
    return assemble(
        recordings,
        [class_dir.split("_", 1)[1] for class_dir in wanted],
        name="uestc_mmea",
        subject_names=subject_names,
        streams=streams,
        stored={"video": store},
    )


def _subjects(
    stems: Sequence[str], subject_map: str | Path | None
) -> tuple[np.ndarray, dict[int, str]]:
    """Subject id per sample and the names of the ids (integers kept, text numbered)."""
    if subject_map is None:
        return np.zeros(len(stems), dtype=np.int64), {}
    mapping = read_subject_map(subject_map)
    missing = [s for s in stems if s not in mapping]
    if missing:
        raise DcatError(
            f"{subject_map}: {len(missing)} loaded sample(s) have no subject, e.g. "
            f"{missing[:3]} (expected an entry per sample: stem, class/stem or file name)"
        )
    names = [mapping[s] for s in stems]
    if all(re.fullmatch(r"[-+]?\d+", n) for n in names):
        ids = np.array([int(n) for n in names], dtype=np.int64)
    else:
        # Text ids are numbered in sorted order; subject_names keeps the original text.
        order = {name: i for i, name in enumerate(sorted(set(names)))}
        ids = np.array([order[n] for n in names], dtype=np.int64)
    return ids, {int(i): n for i, n in zip(ids, names, strict=True)}
