"""Smartphone + smartwatch IMU (Matey-Sanz, Casteleyn, Granell, Data in Brief 2023), 5 activities.

Files as released: ``DATA/sXX/sXX_YY_sp.csv`` (phone, trouser pocket) and ``DATA/sXX/sXX_YY_sw.csv``
(watch, wrist), one pair per execution of a timed-up-and-go sequence (~11 s). Columns ``x_acc,
y_acc, z_acc`` (m/s²), ``x_gyro, y_gyro, z_gyro`` (rad/s), ``timestamp`` (UNIX ms, a clock shared by
both devices) and ``label`` (per sample). Both devices sample at about 100 Hz; the phone stamps its
samples in bursts (several samples per timestamp, gaps up to ~0.2 s between bursts), so the two
streams are cut into windows on a common time grid with :func:`dcat.io.windows.cut_windows`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcat.data.assemble import Recording, assemble
from dcat.data.paired import PairedDataset, StreamInfo
from dcat.data.registry import register_dataset
from dcat.errors import DcatError
from dcat.io.table import read_rows
from dcat.io.windows import LabelRule, Stream, cut_windows

__all__ = ["SP_SW_HAR_ACTIVITIES", "SP_SW_HAR_CHANNELS", "load_sp_sw_har", "read_execution"]

SP_SW_HAR_ACTIVITIES = ["WALKING", "TURNING", "SEATED", "SITTING_DOWN", "STANDING_UP"]
SP_SW_HAR_CHANNELS = ["x_acc", "y_acc", "z_acc", "x_gyro", "y_gyro", "z_gyro"]
_DEVICES = {"phone": "sp", "watch": "sw"}
_FILE = re.compile(r"^s(\d+)_(\d+)_(sp|sw)\.csv$")
_SUBJECT_DIR = re.compile(r"^s\d+$")


def read_execution(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read one device file of one execution, columns found by name.

    Args:
        path: A ``sXX_YY_sp.csv`` or ``sXX_YY_sw.csv`` file.

    Returns:
        ``timestamps_ms`` ``(N,)`` float64 UNIX milliseconds, ``values`` ``(N, 6)`` float64 (acc x,
        y, z then gyro x, y, z) and ``labels`` ``(N,)`` int64 indices into
        :data:`SP_SW_HAR_ACTIVITIES`, in file order.

    Raises:
        DcatError: An empty file, a missing column, a short row, a non-numeric or non-finite
            value, or an unknown label (file, row and column or value named). Rows are counted
            from 1 at the first data row.
    """
    # rows from 1 at the first data row, counting only non-blank rows
    rows = read_rows(
        path,
        header=True,
        require=[*SP_SW_HAR_CHANNELS, "timestamp", "label"],
        count_skipped=False,
        empty="empty file (expected a header and data rows)",
        ragged="has {count} fields, the header has {width}",
    )
    numeric = rows.numeric([*SP_SW_HAR_CHANNELS, "timestamp"], strip=True)
    values, timestamps = numeric[:, :6], numeric[:, 6]
    index = {activity: i for i, activity in enumerate(SP_SW_HAR_ACTIVITIES)}
    labels = np.empty(len(rows), dtype=np.int64)
    for i, (row_number, label) in enumerate(zip(rows.row_numbers, rows.text("label"), strict=True)):
        if label not in index:
            raise DcatError(
                f"{path}: row {row_number}, column 'label': unknown label {label!r} "
                f"(expected one of {SP_SW_HAR_ACTIVITIES})"
            )
        labels[i] = index[label]
    return timestamps, values, labels


def _find_executions(data_dir: Path) -> dict[tuple[str, str], dict[str, Path]]:
    """``(subject "XX", execution "YY")`` → device code → file, for every file found."""
    found: dict[tuple[str, str], dict[str, Path]] = {}
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        if not _SUBJECT_DIR.match(folder.name):
            continue
        for path in sorted(folder.glob("*.csv")):
            match = _FILE.match(path.name)
            if match:
                subject, execution, device = match.groups()
                found.setdefault((subject, execution), {})[device] = path
    return found


_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


@register_dataset(
    "sp_sw_har", summary="smartphone + smartwatch IMU: continuous recordings cut into windows"
)
def load_sp_sw_har(
    root: str | Path,
    *,
    window_s: float = 2.0,
    stride_s: float = 1.0,
    rates: Mapping[str, float] | None = None,
    subjects: Sequence[int] | None = None,
    label_source: str = "phone",
    max_gap_s: float | None = 0.25,
    label_rule: LabelRule = "majority",
    min_label_fraction: float = 0.0,
) -> PairedDataset:
    """Read the smartphone + smartwatch set into windows with modalities ``phone`` and ``watch``.

    Each execution's two files share a UNIX clock; both are cut into windows on the span they
    both cover (:func:`~dcat.io.windows.cut_windows`), each resampled to its own rate.

    Args:
        root: The data set folder holding ``DATA/`` (or the ``DATA`` folder itself).
        window_s: Window length in seconds.
        stride_s: Step between window starts in seconds.
        rates: Output rate in Hz per modality; default ``{"phone": 100.0, "watch": 100.0}``.
        subjects: Keep only these subject numbers (1–23); all by default.
        label_source: ``"phone"`` or ``"watch"``: whose per-sample labels label the windows.
        max_gap_s: Drop windows overlapping a longer gap between samples of either device.
            The default 0.25 s tolerates the phone's burst timestamps (gaps up to ~0.19 s in the
            release); ``None`` means 3 sample periods, which drops nearly every phone window.
        label_rule: ``"majority"`` or ``"center"`` (see :func:`~dcat.io.windows.cut_windows`).
        min_label_fraction: Drop windows whose label covers less of the window than this.

    Returns:
        ``phone`` and ``watch`` ``(N, 6, round(window_s * rate))`` (acc x, y, z in m/s², gyro x,
        y, z in rad/s), labels indexing :data:`SP_SW_HAR_ACTIVITIES` (WALKING, TURNING, SEATED,
        SITTING_DOWN, STANDING_UP), subjects ``XX`` as ints, recordings ``"sXX_YY_wK"`` (K-th
        kept window of execution YY, from 0).

    Raises:
        DcatError: A missing folder or pair file, an unreadable file (named with row and
            column), unknown subjects, a bad option, or no windows at all.
    """
    root = Path(root)
    rates = {"phone": 100.0, "watch": 100.0, **(rates or {})}
    if set(rates) != set(_DEVICES):
        raise DcatError(f"rates must name 'phone' and 'watch' only, got {sorted(rates)}")
    if label_source not in _DEVICES:
        raise DcatError(f"label_source must be 'phone' or 'watch', got {label_source!r}")
    if not root.is_dir():
        raise DcatError(f"sp_sw_har folder {root} not found")
    data_dir = root / "DATA" if (root / "DATA").is_dir() else root
    executions = _select_executions(data_dir, subjects)
    options = _Options(
        rates, label_source, window_s, stride_s, max_gap_s, label_rule, min_label_fraction
    )
    windows = (
        window
        for (subject, execution), files in sorted(executions.items())
        for window in _execution_windows(data_dir, subject, execution, files, options)
    )
    return assemble(
        windows,
        SP_SW_HAR_ACTIVITIES,
        name="sp_sw_har",
        streams={
            m: StreamInfo(rates[m], _CHANNELS, note="windows of continuous streams")
            for m in _DEVICES
        },
        empty=f"no windows of {window_s} s fit the executions in {data_dir} "
        f"(max_gap_s={max_gap_s}, min_label_fraction={min_label_fraction})",
    )


def _select_executions(
    data_dir: Path, subjects: Sequence[int] | None
) -> dict[tuple[str, str], dict[str, Path]]:
    """The executions found in ``data_dir`` (as :func:`_find_executions`) of ``subjects``.

    Raises:
        DcatError: No execution at all, or a subject that has none.
    """
    executions = _find_executions(data_dir)
    if not executions:
        raise DcatError(f"no sXX/sXX_YY_sp.csv or sXX_YY_sw.csv files found in {data_dir}")
    if subjects is None:
        return executions
    wanted = {int(s) for s in subjects}
    present = {int(subject) for subject, _ in executions}
    if wanted - present:
        raise DcatError(
            f"subjects {sorted(wanted - present)} not found in {data_dir} (has {sorted(present)})"
        )
    return {k: v for k, v in executions.items() if int(k[0]) in wanted}


@dataclass(frozen=True)
class _Options:
    """The windowing options of :func:`load_sp_sw_har`, as given."""

    rates: Mapping[str, float]
    label_source: str
    window_s: float
    stride_s: float
    max_gap_s: float | None
    label_rule: LabelRule
    min_label_fraction: float


def _execution_windows(
    data_dir: Path, subject: str, execution: str, files: Mapping[str, Path], options: _Options
) -> Iterator[Recording]:
    """The windows of one execution, in time order: ``phone`` and ``watch`` each
    ``(6, round(window_s * rate))``, named ``"sXX_YY_wK"``.

    Raises:
        DcatError: The execution lacks one device's file, or a file is unreadable.
    """
    for code in _DEVICES.values():
        if code not in files:
            missing = data_dir / f"s{subject}" / f"s{subject}_{execution}_{code}.csv"
            raise DcatError(f"{missing}: missing file (its pair is present)")
    read = {m: read_execution(files[code]) for m, code in _DEVICES.items()}
    # Relative seconds keep sub-millisecond resolution that UNIX-epoch float seconds lose.
    origin = min(timestamps[0] for timestamps, _, _ in read.values())
    streams = {
        m: Stream((timestamps - origin) / 1000.0, values, float(options.rates[m]))
        for m, (timestamps, values, _) in read.items()
    }
    label_ms, _, label_values = read[options.label_source]
    windows = cut_windows(
        streams,
        (label_ms - origin) / 1000.0,
        label_values,
        window_s=options.window_s,
        stride_s=options.stride_s,
        max_gap_s=options.max_gap_s,
        label_rule=options.label_rule,
        min_label_fraction=options.min_label_fraction,
    )
    for k in range(len(windows)):
        yield Recording(
            {m: windows.inputs[m][k] for m in _DEVICES},
            int(windows.labels[k]),
            int(subject),
            f"s{subject}_{execution}_w{k}",
        )
