"""Audio-IMU multimodal cough dataset (NCSU, Dryad doi:10.5061/dryad.mkkwh717r), 8 sound classes.

Files as released on Dryad::

    <root>/DataAnnotation.json                 Audino export, one entry per annotated WAV
    <root>/005/sync_time.txt                   one line per trial: audio ↔ IMU clock offset
    <root>/005/Trial_1_No_Talking/             also Trial_2_Talking, Trial_3_Nonverbal
        005_No_Talking_In.wav, ..._Out.wav     16 kHz mono; one of the two is annotated
        Accelerometer.csv, Gyroscope.csv       MetaWear exports, ~100 Hz, ``elapsed (s)`` column
        Magnetometer.csv                       ~25 Hz
    ...
    <root>/017/

Each trial is one continuous ~10 min recording. The annotation gives event segments (seconds on
the annotated WAV's timeline); ``sync_time.txt`` maps that timeline onto the IMU's ``elapsed (s)``
axis: ``t_imu = t_audio - data_label_start + imu_start``. Samples are windows cut from the
continuous streams on the IMU clock (:func:`~dcat.io.windows.cut_windows`), labelled by the
segments they cover. Subject ids are the numbers of the folder names (005–017 → 5–17), so
subject-disjoint (OOD) splits are possible; ``subject_names`` keeps the folder names, which is
how a split config names the subjects (``test_subjects: ['016', '017']``, quoted: YAML reads an
unquoted ``016`` as the octal number 14). The data are CC0 (Dryad).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from dcat.data.assemble import Recording, assemble
from dcat.data.paired import PairedDataset, StreamInfo
from dcat.data.registry import register_dataset
from dcat.errors import DcatError
from dcat.io.media import read_wav
from dcat.io.table import read_rows
from dcat.io.windows import LabelRule, Stream, cut_windows

__all__ = [
    "COUGH_BACKGROUND",
    "COUGH_CLASSES",
    "COUGH_SENSORS",
    "CoughSegment",
    "load_cough",
    "read_cough_annotations",
    "read_metawear",
    "read_sync_times",
]

# Class order of the authors' code README (value ids 1–8 of the Audino export, in this order).
COUGH_CLASSES = [
    "Cough", "Speech", "Sneeze", "Deep breath", "Groan", "Laugh", "Speech (far)", "Other sound",
]  # fmt: skip
# Unannotated time; the authors' index 8 ("Unkown").
COUGH_BACKGROUND = "Background"
# MetaWear file name and the unit in its axis column names, e.g. ``x-axis (deg/s)``.
COUGH_SENSORS = {"accelerometer": "g", "gyroscope": "deg/s", "magnetometer": "t"}
_SENSOR_FILES = {
    "accelerometer": "Accelerometer.csv",
    "gyroscope": "Gyroscope.csv",
    "magnetometer": "Magnetometer.csv",
}
_SHORT = {"accelerometer": "acc", "gyroscope": "gyro", "magnetometer": "mag"}  # channel names

# Class text as written by annotators → class index; matched after _normalise_text.
_CLASS_TEXT = {name.lower(): i for i, name in enumerate(COUGH_CLASSES)}
_CLASS_TEXT.update({"other sounds": 7, "deep breaths": 3, "speech far": 6})
# Text meaning "no class"; such segments leave the time unlabelled (background).
_BACKGROUND_TEXT = {"unknown", "unkown", "background"}
_BACKGROUND_ID = len(COUGH_CLASSES) + 1  # value id 9 in the authors' numbering
# Label samples per second when turning segments into per-time labels: 5 ms resolution, finer
# than any annotated event and than one IMU sample.
_LABEL_RATE = 200.0
_SUBJECT_DIR = re.compile(r"^\d{3}$")
_TRIAL_DIR = re.compile(r"^trial_(\d+)", re.IGNORECASE)
_FILE_SUBJECT = re.compile(r"^(\d{3})_")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SYNC_TRIAL = re.compile(r"\btrial\s*[_:]?\s*(\d+)", re.IGNORECASE)
_SYNC_DATA = re.compile(rf"\bdata_label_start\s*[:=]?\s*({_NUMBER})", re.IGNORECASE)
_SYNC_IMU = re.compile(rf"\bimu_start\s*[:=]?\s*({_NUMBER})", re.IGNORECASE)


@dataclass(frozen=True)
class CoughSegment:
    """One annotated event on its WAV's timeline.

    Attributes:
        start_s: Start in seconds from the beginning of the WAV.
        end_s: End in seconds (exclusive).
        label: Index into :data:`COUGH_CLASSES`, or ``len(COUGH_CLASSES)`` for background.
    """

    start_s: float
    end_s: float
    label: int


def _normalise_text(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").split())


def _segment_label(path: Path, where: str, annotations: object) -> int:
    """Class index of one segment's ``annotations`` mapping (an Audino export)."""
    if not isinstance(annotations, Mapping) or not annotations:
        raise DcatError(
            f"{path}: {where}, field 'annotations': expected a non-empty object "
            f"{{category: {{'values': {{'id': .., 'value': ..}}}}}}, got {annotations!r}"
        )
    labels = set()
    for category, annotation in annotations.items():
        values = annotation.get("values") if isinstance(annotation, Mapping) else None
        if not isinstance(values, Mapping):
            raise DcatError(
                f"{path}: {where}, field 'annotations.{category}.values': expected an object "
                f"with 'value' (class text) or 'id' (1–8), got {values!r}"
            )
        # The key is Audino's label *category*, not the class: the class is values["value"].
        text = values.get("value")
        if isinstance(text, str) and text.strip():
            key = _normalise_text(text)
            if key in _BACKGROUND_TEXT:
                labels.add(len(COUGH_CLASSES))
                continue
            if key not in _CLASS_TEXT:
                raise DcatError(
                    f"{path}: {where}, field 'annotations.{category}.values.value': unknown "
                    f"label {text!r} (expected one of {COUGH_CLASSES})"
                )
            labels.add(_CLASS_TEXT[key])
            continue
        value_id = values.get("id")
        if isinstance(value_id, bool) or not isinstance(value_id, int):
            raise DcatError(
                f"{path}: {where}, field 'annotations.{category}.values': neither a class text "
                f"'value' nor an integer 'id' (got {dict(values)!r})"
            )
        if value_id == _BACKGROUND_ID:
            labels.add(len(COUGH_CLASSES))
        elif 1 <= value_id <= len(COUGH_CLASSES):
            labels.add(value_id - 1)
        else:
            raise DcatError(
                f"{path}: {where}, field 'annotations.{category}.values.id': unknown label id "
                f"{value_id} (expected 1–{len(COUGH_CLASSES)})"
            )
    if len(labels) > 1:
        raise DcatError(
            f"{path}: {where}, field 'annotations': several classes "
            f"{sorted(labels)} in one segment (expected one)"
        )
    return labels.pop()


def _seconds(path: Path, where: str, segment: Mapping, field: str) -> float:
    value = segment.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise DcatError(
            f"{path}: {where}, field {field!r}: expected a finite number of seconds, got {value!r}"
        )
    return float(value)


def read_cough_annotations(path: str | Path) -> dict[str, list[CoughSegment]]:
    """Read ``DataAnnotation.json`` (an Audino export).

    Args:
        path: The JSON file: a list of entries ``{"original_filename": "005_Talking_In.wav",
            "segmentations": [{"start_time": s, "end_time": e, "annotations": {category:
            {"values": {"id": k, "value": "Cough"}}}}, ...]}``. The class is ``value`` (matched
            case-insensitively); without it, ``id`` 1–8 in :data:`COUGH_CLASSES` order.

    Returns:
        WAV file name (as written, without folders) → its segments in file order.

    Raises:
        DcatError: Malformed JSON, a missing or malformed field, an unknown label, a segment
            ending before it starts, or a file annotated twice (file, entry and segment named;
            entries and segments are counted from 0).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise DcatError(
            f"{path}: malformed JSON at line {err.lineno}, column {err.colno} ({err.msg})"
        ) from err
    if not isinstance(data, list):
        raise DcatError(
            f"{path}: expected a JSON list of annotated files, got {type(data).__name__}"
        )
    out: dict[str, list[CoughSegment]] = {}
    seen: set[str] = set()  # names compare case-insensitively, as the files are matched
    for e, entry in enumerate(data):
        if not isinstance(entry, Mapping):
            raise DcatError(f"{path}: entry {e}: expected an object, got {entry!r}")
        name = entry.get("original_filename", entry.get("filename"))
        if not isinstance(name, str) or not name.strip():
            raise DcatError(
                f"{path}: entry {e}, field 'original_filename': expected a WAV file name, "
                f"got {name!r}"
            )
        name = Path(name.strip().replace("\\", "/")).name
        segments = entry.get("segmentations")
        if not isinstance(segments, list):
            raise DcatError(
                f"{path}: entry {e} ({name}), field 'segmentations': expected a list, "
                f"got {segments!r}"
            )
        parsed = []
        for s, segment in enumerate(segments):
            where = f"entry {e} ({name}), segment {s}"
            if not isinstance(segment, Mapping):
                raise DcatError(f"{path}: {where}: expected an object, got {segment!r}")
            start = _seconds(path, where, segment, "start_time")
            end = _seconds(path, where, segment, "end_time")
            if end < start:
                raise DcatError(f"{path}: {where}: end_time {end} is before start_time {start}")
            label = _segment_label(path, where, segment.get("annotations"))
            parsed.append(CoughSegment(start, end, label))
        if name.lower() in seen:
            raise DcatError(f"{path}: entry {e}: {name} is annotated twice")
        seen.add(name.lower())
        out[name] = parsed
    return out


def read_sync_times(path: str | Path) -> dict[int, tuple[float, float]]:
    """Read a subject's ``sync_time.txt``.

    Each non-empty line names a trial and two times, e.g.
    ``trial 1  data_label_start 5.0  imu_start 10.0``: the claps happen at
    ``data_label_start`` s on the audio timeline and at ``imu_start`` s on the IMU ``elapsed (s)``
    axis. Values are found by keyword, so spacing and ``:``/``=`` separators do not matter.

    Returns:
        Trial number → ``(data_label_start, imu_start)`` in seconds.

    Raises:
        DcatError: A line without a trial number or either time, or a trial given twice (file
            and line, from 1, named).
    """
    path = Path(path)
    out: dict[int, tuple[float, float]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        found = {}
        for field, pattern in (
            ("trial", _SYNC_TRIAL),
            ("data_label_start", _SYNC_DATA),
            ("imu_start", _SYNC_IMU),
        ):
            match = pattern.search(line)
            if match is None:
                raise DcatError(
                    f"{path}: line {number}, field {field!r}: not found in {line.strip()!r} "
                    "(expected e.g. 'trial 1  data_label_start 5.0  imu_start 10.0')"
                )
            found[field] = match.group(1)
        trial = int(found["trial"])
        if trial in out:
            raise DcatError(f"{path}: line {number}: trial {trial} is given twice")
        out[trial] = (float(found["data_label_start"]), float(found["imu_start"]))
    if not out:
        raise DcatError(f"{path}: empty file (expected one line per trial)")
    return out


def _header_key(cell: str) -> str:
    return " ".join(cell.strip().lower().split())


def read_metawear(path: str | Path, unit: str) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Read one MetaWear CSV export, columns found by name (case-insensitive).

    Args:
        path: E.g. ``Accelerometer.csv`` with header ``epoch (ms),time (-04:00),elapsed (s),
            x-axis (g),y-axis (g),z-axis (g)``.
        unit: The unit in the axis column names: ``"g"``, ``"deg/s"`` or ``"t"``.

    Returns:
        ``elapsed`` ``(N,)`` float64 seconds, ``values`` ``(N, 3)`` float64 (x, y, z), and the
        file's clock offset ``epoch (ms) − 1000 · elapsed (s)`` in milliseconds (median over
        rows), or ``None`` without an ``epoch (ms)`` / ``epoc (ms)`` column. Rows are in file
        order.

    Raises:
        DcatError: An empty file, a missing column, a short row or a non-numeric or non-finite
            value (file, row from 1 at the first data row, and column named).
    """
    wanted = ["elapsed (s)", *(f"{axis}-axis ({unit.lower()})" for axis in "xyz")]
    # rows from 1 at the first data row, counting only non-blank rows
    rows = read_rows(
        path,
        header=True,
        header_key=_header_key,
        require=wanted,
        count_skipped=False,
        empty="empty file (expected a MetaWear header and data rows)",
        ragged="has {count} fields, the header has {width}",
    )
    header = rows.header or []
    epoch = next((c for c in ("epoch (ms)", "epoc (ms)") if c in header), None)
    numeric = rows.numeric(wanted + ([epoch] if epoch else []), strip=True)
    elapsed, values = numeric[:, 0], numeric[:, 1:4]
    # In ms, not s: epoch seconds (~1.7e9) would lose sub-microsecond precision, and the
    # differences between files are what matter.
    offset = float(np.median(numeric[:, 4] - 1000.0 * elapsed)) if epoch else None
    return elapsed, values, offset


def _find_root(root: Path) -> Path:
    if (root / "DataAnnotation.json").is_file():
        return root
    if root.is_dir():
        # The zip unpacks into one folder (e.g. "Multimodal Cough Dataset/").
        inner = [p for p in root.iterdir() if (p / "DataAnnotation.json").is_file()]
        if len(inner) == 1:
            return inner[0]
    raise DcatError(f"cough data set: no DataAnnotation.json in {root} or its sub-folders")


def _trial_for_name(name: str) -> int:
    """Trial number from the WAV name's tokens, as the authors' LabelConveter.ipynb does."""
    tokens = Path(name).stem.lower().split("_")
    if "talking" in tokens:
        return 1 if "no" in tokens else 2
    return 3


def _trial_number(folder: Path) -> int:
    """``n`` of a trial folder ``Trial_<n>_...`` (its name matches :data:`_TRIAL_DIR`)."""
    return int(cast(re.Match[str], _TRIAL_DIR.match(folder.name)).group(1))


def _find_wav(subject_dir: Path, name: str) -> Path:
    """The annotated WAV in the subject's trial folders, matched case-insensitively."""
    trials = sorted(p for p in subject_dir.iterdir() if p.is_dir() and _TRIAL_DIR.match(p.name))
    expected = [p for p in trials if _trial_number(p) == _trial_for_name(name)]
    # The trial its name implies first; file names are inconsistent, so then any trial folder.
    for folders in (expected, trials):
        found = [w for t in folders for w in t.iterdir() if w.name.lower() == name.lower()]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise DcatError(f"{subject_dir}: annotated file {name} matches several files {found}")
    raise DcatError(
        f"{subject_dir}: annotated file {name} (named in DataAnnotation.json) not found in "
        f"{[t.name for t in trials]}"
    )


def _per_time_labels(segments: Sequence[CoughSegment], duration_s: float) -> tuple:
    """Label samples ``(times (L,), labels (L,))`` on the audio timeline; background by default."""
    times = (np.arange(int(np.ceil(duration_s * _LABEL_RATE))) + 0.5) / _LABEL_RATE
    labels = np.full(len(times), len(COUGH_CLASSES), dtype=np.int64)
    # Overlapping segments: the later one in the file wins (annotators add events on top).
    for segment in segments:
        labels[(times >= segment.start_s) & (times < segment.end_s)] = segment.label
    return times, labels


def _window_lengths(
    window_s: float | Mapping[str, float] | None, imu_rate: float
) -> dict[str, float]:
    if window_s is None:
        # Table I: Cough-IMU window 60 (samples), Cough-Audio 0.5 s.
        return {"imu": 60.0 / imu_rate, "audio": 0.5}
    if isinstance(window_s, Mapping):
        if set(window_s) != {"imu", "audio"}:
            raise DcatError(f"window_s must name 'imu' and 'audio', got {sorted(window_s)}")
        lengths = {m: float(v) for m, v in window_s.items()}
    else:
        lengths = {"imu": float(window_s), "audio": float(window_s)}
    for modality, value in lengths.items():
        if not np.isfinite(value) or value <= 0:
            raise DcatError(f"window_s[{modality!r}] must be positive seconds, got {value}")
    return lengths


@register_dataset("cough", summary="NCSU cough set (Dryad): chest IMU + audio, 8 sound classes")
def load_cough(
    root: str | Path,
    *,
    window_s: float | Mapping[str, float] | None = None,
    stride_s: float = 0.5,
    audio_rate: int = 16000,
    imu_rate: float = 100.0,
    subjects: Sequence[int | str] | None = None,
    sensors: Sequence[str] = ("accelerometer", "gyroscope"),
    include_background: bool = False,
    max_gap_s: float = 0.1,
    label_rule: LabelRule = "majority",
    min_label_fraction: float = 0.0,
) -> PairedDataset:
    """Read the cough data set into windows with modalities ``imu`` and ``audio``.

    For every annotated WAV (one per subject and trial), the IMU CSVs of its trial folder and the
    subject's ``sync_time.txt`` are read; audio and labels are moved onto the IMU clock, the IMU
    is restricted to the time the audio covers, and windows are cut every ``stride_s`` seconds.
    The IMU and the labels go through :func:`~dcat.io.windows.cut_windows`; the audio is cut
    from the WAV at the same times by sample index, because interpolating audio onto a shifted
    grid would low-pass it. When the two modalities' windows differ in length they share their
    centre, and the label is that of the longer window.

    Defaults (paper Table I, "Window/Stride Length": Cough-IMU 60, Cough-Audio 0.5 s): the IMU
    window is 60 samples at ``imu_rate`` = 100 Hz (the MetaWear rate in the authors'
    ``DataPreprocess.m``), i.e. 0.6 s, and the audio window 0.5 s, centred in it; windows start
    every 0.5 s (Table I's audio value, also the step of the cough authors' own windowing).

    Args:
        root: The folder holding ``DataAnnotation.json`` (or the folder the zip unpacked into).
        window_s: Seconds per window: one value for both, ``{"imu": s, "audio": s}``, or ``None``
            for the Table I defaults above.
        stride_s: Step between window starts in seconds.
        audio_rate: Output audio rate; WAVs at another rate are resampled.
        imu_rate: Output IMU rate (the accelerometer and gyroscope record at ~100 Hz).
        subjects: Keep only these subjects (``5`` or ``"005"``); all annotated ones by default.
        sensors: IMU files to read, in channel order, from ``accelerometer`` (g), ``gyroscope``
            (deg/s) and ``magnetometer`` (T, ~25 Hz); three channels each.
        include_background: Keep windows whose label is unannotated time, as class
            :data:`COUGH_BACKGROUND` (index 8); by default they are dropped and the classes are
            the paper's 8 tasks.
        max_gap_s: Drop windows overlapping a longer gap between IMU samples (Bluetooth
            dropouts); 0.1 s is 10 samples at 100 Hz and 2.5 at the magnetometer's 25 Hz.
        label_rule: ``"majority"`` or ``"center"`` (:func:`~dcat.io.windows.cut_windows`),
            applied to per-time labels at 200 Hz that are background outside the segments.
        min_label_fraction: Drop windows whose label covers less of the window than this.

    Returns:
        ``imu`` ``(N, 3 * len(sensors), round(window_s["imu"] * imu_rate))`` and ``audio``
        ``(N, 1, round(window_s["audio"] * audio_rate))`` float32; labels indexing
        :data:`COUGH_CLASSES` (plus :data:`COUGH_BACKGROUND`); subjects 5–17 (``subject_names``
        gives the folder names ``"005"``…, as split configs name them); recordings
        ``"<subject>_<trial folder>_w<k>"`` (``k``: the window's position among all windows of
        that trial, background included).

    Raises:
        DcatError: A missing file (WAV, IMU CSV, ``sync_time.txt``, subject folder), a malformed
            file (named with row/line and field), unknown subjects or sensors, a trial absent from
            ``sync_time.txt``, a bad option, or no windows at all.
    """
    base = _find_root(Path(root))
    options = _Options.checked(
        window_s, stride_s, audio_rate, imu_rate, sensors, include_background, max_gap_s,
        label_rule, min_label_fraction,
    )  # fmt: skip
    annotations = read_cough_annotations(base / "DataAnnotation.json")
    windows, subject_names = _read_windows(base, annotations, subjects, options)
    return assemble(
        windows,
        COUGH_CLASSES + ([COUGH_BACKGROUND] if include_background else []),
        name="cough",
        subject_names=subject_names,
        streams=options.streams(),
        empty=f"no windows of {options.outer} s found in {base} (subjects={subjects}, "
        f"include_background={include_background}, max_gap_s={max_gap_s})",
    )


@dataclass(frozen=True)
class _Options:
    """The windowing options of :func:`load_cough`, checked (see there).

    Attributes:
        lengths: ``"imu"`` and ``"audio"`` → window seconds.
    """

    lengths: Mapping[str, float]
    stride_s: float
    audio_rate: int
    imu_rate: float
    sensors: tuple[str, ...]
    include_background: bool
    max_gap_s: float
    label_rule: LabelRule
    min_label_fraction: float

    @classmethod
    def checked(
        cls,
        window_s: float | Mapping[str, float] | None,
        stride_s: float,
        audio_rate: int,
        imu_rate: float,
        sensors: Sequence[str],
        include_background: bool,
        max_gap_s: float,
        label_rule: LabelRule,
        min_label_fraction: float,
    ) -> _Options:
        """The options, window lengths resolved (:func:`_window_lengths`).

        Raises:
            DcatError: A bad window length, a stride or rate that is not positive, or sensors
                that are unknown, repeated or none.
        """
        lengths = _window_lengths(window_s, imu_rate)
        for what, value in (
            ("stride_s", stride_s),
            ("imu_rate", imu_rate),
            ("audio_rate", audio_rate),
        ):
            if not np.isfinite(value) or value <= 0:
                raise DcatError(f"{what} must be positive, got {value}")
        unknown = [s for s in sensors if s not in COUGH_SENSORS]
        if unknown or not sensors or len(set(sensors)) != len(sensors):
            raise DcatError(
                f"sensors must be distinct names from {list(COUGH_SENSORS)}, got {list(sensors)}"
            )
        return cls(
            lengths, stride_s, audio_rate, imu_rate, tuple(sensors), include_background,
            max_gap_s, label_rule, min_label_fraction,
        )  # fmt: skip

    @property
    def outer(self) -> float:
        """Seconds of the longer window, the one windows are cut and labelled by."""
        return max(self.lengths.values())

    def steps(self, modality: str) -> int:
        """Samples per window of ``modality`` (``"imu"`` or ``"audio"``) at its output rate."""
        rate = self.imu_rate if modality == "imu" else self.audio_rate
        return round(self.lengths[modality] * rate)

    def streams(self) -> dict[str, StreamInfo]:
        """The ``imu`` and ``audio`` streams: windows at the output rates."""
        channels = tuple(f"{_SHORT[sensor]}_{axis}" for sensor in self.sensors for axis in "xyz")
        note = "windows of continuous streams"
        return {
            "imu": StreamInfo(self.imu_rate, channels, note=note),
            "audio": StreamInfo(float(self.audio_rate), ("audio",), note=note, kind="audio"),
        }


def _read_windows(
    base: Path,
    annotations: Mapping[str, Sequence[CoughSegment]],
    subjects: Sequence[int | str] | None,
    options: _Options,
) -> tuple[list[Recording], dict[int, str]]:
    """The kept windows of every annotated trial of ``subjects``, by subject folder then WAV
    name, and subject id → folder name (``"005"``) of the subjects that kept windows."""
    entries = _annotated_files(base, annotations, subjects)
    windows = [
        window
        for subject, name in sorted(entries)
        for window in _trial_windows(base / subject, name, annotations[name], options)
    ]
    folders = {int(subject): subject for subject, _ in entries}
    return windows, {i: folders[i] for i in sorted({w.subject for w in windows})}


def _annotated_files(
    base: Path, annotations: Mapping[str, object], subjects: Sequence[int | str] | None
) -> list[tuple[str, str]]:
    """``(subject folder, WAV name)`` of every annotated file of ``subjects``, in file order.

    Raises:
        DcatError: A file name without a subject id, or a wanted subject without a folder.
    """
    present = sorted(p.name for p in base.iterdir() if p.is_dir() and _SUBJECT_DIR.match(p.name))
    entries: list[tuple[str, str]] = []
    for name in annotations:
        match = _FILE_SUBJECT.match(name)
        if match is None:
            raise DcatError(
                f"{base / 'DataAnnotation.json'}: file {name!r} does not start with a "
                "3-digit subject id (expected e.g. '005_Talking_In.wav')"
            )
        entries.append((match.group(1), name))
    if subjects is None:
        return entries
    wanted = {f"{int(s):03d}" for s in subjects}
    if wanted - set(present):
        raise DcatError(
            f"subjects {sorted(wanted - set(present))} not found in {base} (has {present})"
        )
    return [(s, n) for s, n in entries if s in wanted]


@dataclass(frozen=True)
class _Trial:
    """One annotated trial, located.

    Attributes:
        wav: The annotated WAV (in its trial folder).
        number: The trial number of its folder (``Trial_<n>_...``).
        sync_path: The subject's ``sync_time.txt``.
        shift: Seconds from the WAV's timeline to the IMU clock: ``t_imu = t_audio + shift``.
    """

    wav: Path
    number: int
    sync_path: Path
    shift: float


def _locate_trial(subject_dir: Path, name: str) -> _Trial:
    """Find the annotated WAV ``name`` of a subject and its clock offset from ``sync_time.txt``.

    Raises:
        DcatError: A missing subject folder, WAV or ``sync_time.txt``, or a trial the latter
            does not list.
    """
    if not subject_dir.is_dir():
        raise DcatError(f"{subject_dir}: missing subject folder (annotated file {name})")
    wav = _find_wav(subject_dir, name)
    trial = _trial_number(wav.parent)  # one of the trial folders
    sync_path = subject_dir / "sync_time.txt"
    if not sync_path.is_file():
        raise DcatError(f"{sync_path}: missing file (needed to align {wav.name})")
    sync = read_sync_times(sync_path)
    if trial not in sync:
        raise DcatError(
            f"{sync_path}: no line for trial {trial} (has {sorted(sync)}), needed for {wav}"
        )
    data_start, imu_start = sync[trial]
    return _Trial(wav, trial, sync_path, imu_start - data_start)


def _imu_streams(
    trial: _Trial, audio_span: tuple[float, float], options: _Options
) -> dict[str, Stream]:
    """The trial's IMU files on the IMU clock, restricted to ``audio_span`` (seconds on it).

    Returns:
        Sensor → its samples ``(N, 3)`` inside the span, in ``options.sensors`` order.

    Raises:
        DcatError: A missing or malformed IMU file, or a sensor with fewer than 2 samples
            inside the span (a wrong sync offset).
    """
    read = {}
    for sensor in options.sensors:
        path = trial.wav.parent / _SENSOR_FILES[sensor]
        if not path.is_file():
            raise DcatError(f"{path}: missing {sensor} file (trial of {trial.wav.name})")
        read[sensor] = read_metawear(path, COUGH_SENSORS[sensor])
    # sync_time's imu_start is on the accelerometer's elapsed axis (t1 in DataPreprocess.m);
    # each file's elapsed starts at its own first sample, so the shared epoch clock puts the
    # others on that axis when every file has it.
    # Without the accelerometer, the first sensor's axis stands in (files start within ms).
    reference = read["accelerometer" if "accelerometer" in read else options.sensors[0]][2]
    use_epoch = reference is not None and all(r[2] is not None for r in read.values())
    begin, end = audio_span
    streams = {}
    for sensor, (elapsed, values, offset) in read.items():
        # with use_epoch, reference and every offset are known (the checks only narrow types)
        times = (
            elapsed + (offset - reference) / 1000.0
            if use_epoch and reference is not None and offset is not None
            else elapsed
        )
        # Only IMU time the audio also covers, so every window has both modalities.
        inside = (times >= begin) & (times <= end)
        if np.count_nonzero(inside) < 2:
            raise DcatError(
                f"{trial.sync_path}: trial {trial.number}: the audio ({trial.wav.name}) mapped "
                f"onto the IMU clock covers [{begin:.3f}, {end:.3f}] s, which holds fewer "
                f"than 2 samples of {_SENSOR_FILES[sensor]} (elapsed {times.min():.3f}–"
                f"{times.max():.3f} s); check data_label_start and imu_start"
            )
        streams[sensor] = Stream(times[inside], values[inside], options.imu_rate)
    return streams


def _trial_windows(
    subject_dir: Path, name: str, segments: Sequence[CoughSegment], options: _Options
) -> Iterator[Recording]:
    """The kept windows of one annotated trial, in time order: ``imu``
    ``(3 * len(sensors), imu steps)`` and ``audio`` ``(1, audio steps)``.

    Raises:
        DcatError: As :func:`_locate_trial` and :func:`_imu_streams`, or a malformed WAV.
    """
    trial = _locate_trial(subject_dir, name)
    audio, rate = read_wav(trial.wav, sample_rate=options.audio_rate, mono=True)
    streams = _imu_streams(trial, (trial.shift, trial.shift + len(audio) / rate), options)
    audio_steps = options.steps("audio")
    if len(audio) < audio_steps:
        return
    audio_times, audio_labels = _per_time_labels(segments, len(audio) / rate)
    windows = cut_windows(
        streams,
        audio_times + trial.shift,
        audio_labels,
        window_s=options.outer,
        stride_s=options.stride_s,
        max_gap_s=options.max_gap_s,
        label_rule=options.label_rule,
        min_label_fraction=options.min_label_fraction,
    )
    if not len(windows):
        return
    imu_steps = options.steps("imu")
    first = round((round(options.outer * options.imu_rate) - imu_steps) / 2)
    imu = np.concatenate([windows.inputs[s] for s in options.sensors], axis=1)
    imu = imu[:, :, first : first + imu_steps]
    # Audio windows share the IMU windows' centres; cut by sample index on the WAV.
    audio_first = (
        windows.starts + (options.outer - options.lengths["audio"]) / 2 - trial.shift
    ) * rate
    index = np.clip(np.rint(audio_first).astype(np.int64), 0, len(audio) - audio_steps)
    clips = audio[index[:, None] + np.arange(audio_steps)[None, :]][:, None, :]
    # Window k of the trial, counted on the stride grid from the first possible start (the
    # start of the span all sensors cover), so names do not depend on dropped windows.
    span_start = max(float(np.min(stream.times)) for stream in streams.values())
    positions = np.rint((windows.starts - span_start) / options.stride_s).astype(int)
    for k in range(len(windows)):
        if options.include_background or windows.labels[k] != len(COUGH_CLASSES):
            yield Recording(
                {"imu": imu[k], "audio": clips[k].astype(np.float32)},
                int(windows.labels[k]),
                int(subject_dir.name),
                f"{subject_dir.name}_{trial.wav.parent.name}_w{positions[k]}",
            )
