"""Users' own data: a manifest CSV plus one file per modality and sample or stream (no code needed).

The format is documented for users in ``docs/data_format.md``. In short, the manifest has one row
per segmented sample (a ``label`` column) or per continuous recording (a ``label_file`` column
naming a ``time,label`` CSV), a ``subject`` column, an optional ``recording`` column, and per
modality ``NAME`` a column of ``.npy`` / ``.csv`` paths plus an optional ``NAME_hz`` rate column.
Paths are relative to the manifest's folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcat.data.paired import PairedDataset, StreamInfo
from dcat.data.registry import register_dataset
from dcat.errors import DcatError, did_you_mean
from dcat.io.resample import resample_linear
from dcat.io.table import CsvRows, TableError, is_number, non_finite, read_npy, read_rows
from dcat.io.windows import Stream, cut_windows

__all__ = ["load_manifest"]

_RESERVED = ("subject", "recording", "label", "label_file")
_FILE_TYPES = (".npy", ".csv")
_HZ = "_hz"
# Two modalities of one segmented row cover the same interval; more than this relative
# difference in duration means a wrong file or a wrong rate.
_DURATION_TOLERANCE = 0.10


@dataclass
class _Row:
    number: int  # 1-based data row, counting blank lines, so it matches what a user sees
    cells: dict[str, str]


@dataclass
class _Series:
    values: np.ndarray  # (T, C) float64
    times: np.ndarray | None  # (T,) seconds, from a CSV's ``time`` column
    names: list[str] | None = None  # channel names, from a CSV's header


class _Context:
    """Where an error happened: the manifest, and the row and column at fault."""

    def __init__(self, manifest: Path) -> None:
        self.manifest = manifest
        self.folder = manifest.parent

    def error(self, message: str, row: int | None = None, column: str | None = None) -> DcatError:
        where = [str(self.manifest)]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        return DcatError(f"{', '.join(where)}: {message}")


def _read_manifest(ctx: _Context) -> tuple[list[str], list[_Row]]:
    if not ctx.manifest.is_file():
        raise DcatError(f"manifest {ctx.manifest} not found")
    try:
        table = read_rows(
            ctx.manifest,
            header=True,
            empty="empty manifest (expected a header line naming the columns)",
        )
    except TableError as err:
        if err.row is None:  # already "<manifest>: <message>"
            raise
        raise ctx.error(err.detail, err.row) from err
    header = table.header or []
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated or "" in header:
        raise ctx.error(f"column names must be unique and non-empty, got {header}")
    rows = [
        _Row(number, {c: v.strip() for c, v in zip(header, cells, strict=True)})
        for number, cells in zip(table.row_numbers, table.cells, strict=True)
    ]
    return header, rows


def _find_modalities(ctx: _Context, header: list[str], rows: list[_Row]) -> list[str]:
    """Modality columns: those holding ``.npy``/``.csv`` paths or having a ``NAME_hz`` column."""
    modalities = [
        c
        for c in header
        if c not in _RESERVED
        and (f"{c}{_HZ}" in header or any(r.cells[c].lower().endswith(_FILE_TYPES) for r in rows))
    ]
    unknown = [
        c
        for c in header
        if c not in _RESERVED
        and c not in modalities
        and not (c.endswith(_HZ) and c[: -len(_HZ)] in modalities)
    ]
    if unknown:
        raise ctx.error(
            f"unknown column(s) {unknown}: allowed are subject, recording, label or label_file, "
            "a column of .npy/.csv paths per modality and its NAME_hz rate column"
        )
    if not modalities:
        raise ctx.error("no modality column (a column of .npy or .csv file paths)")
    return modalities


def _resolve(ctx: _Context, row: int, column: str, value: str, allow_absolute: bool) -> Path:
    if not value:
        raise ctx.error("empty cell (a file path is needed here)", row, column)
    if Path(value).is_absolute():
        if not allow_absolute:
            raise ctx.error(
                f"absolute path {value!r} is not allowed; give a path relative to the manifest's "
                "folder or pass allow_absolute=True",
                row,
                column,
            )
        target = Path(value)
    else:
        normal = os.path.normpath(value)
        if (normal == os.pardir or normal.startswith(os.pardir + os.sep)) and not allow_absolute:
            raise ctx.error(
                f"path {value!r} leads outside the manifest's folder {ctx.folder}; move the file "
                "inside it or pass allow_absolute=True",
                row,
                column,
            )
        target = ctx.folder / value
    if not target.is_file():
        raise ctx.error(f"file not found: {target}", row, column)
    if not allow_absolute and not target.resolve().is_relative_to(ctx.folder.resolve()):
        raise ctx.error(
            f"path {value!r} goes through a symbolic link to {target.resolve()}, outside the "
            f"manifest's folder {ctx.folder}; copy the file inside it or pass allow_absolute=True",
            row,
            column,
        )
    return target


def _read_csv_table(ctx: _Context, row: int, column: str, path: Path) -> CsvRows:
    """The data rows of a CSV file the manifest points to (its first line names the columns)."""
    try:
        table = read_rows(path, header=True, no_rows="empty file (no data rows after the header)")
    except TableError as err:
        raise ctx.error(str(err), row, column) from err
    header = table.header or []
    if all(is_number(cell) for cell in header):
        raise ctx.error(
            f"{path}: the first line must name the columns (found numbers {header[:4]})",
            row,
            column,
        )
    return table


def _numeric(
    ctx: _Context, row: int, column: str, table: CsvRows, names: list[str] | None = None
) -> np.ndarray:
    """``(N, K)`` float64 of the named (default all) columns; a non-number is named by file
    row and column."""
    try:
        return table.numeric(names, note=" (wrong dtype)", finite=False)
    except TableError as err:
        raise ctx.error(str(err), row, column) from err


def _check_finite(ctx: _Context, row: int, column: str, path: Path, array: np.ndarray) -> None:
    found = non_finite(array)
    if found is not None:
        index, _count = found
        raise ctx.error(
            f"{path} has a NaN or Inf value (first at index {index} of shape {array.shape})",
            row,
            column,
        )


def _load_series(ctx: _Context, row: int, column: str, path: Path) -> _Series:
    """A modality file as ``(T, C)`` values and, for CSVs with a ``time`` column, times."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            values = read_npy(path)
        except TableError as err:
            raise ctx.error(str(err), row, column) from err
        _check_finite(ctx, row, column, path, values)
        return _Series(values, None)
    if suffix == ".csv":
        rows = _read_csv_table(ctx, row, column, path)
        header = rows.header or []
        table = _numeric(ctx, row, column, rows)
        _check_finite(ctx, row, column, path, table)
        channels = [i for i, name in enumerate(header) if name != "time"]
        if not channels:
            raise ctx.error(f"{path}: no channel columns besides 'time'", row, column)
        times = table[:, header.index("time")] if "time" in header else None
        return _Series(table[:, channels], times, [header[i] for i in channels])
    raise ctx.error(
        f"{path}: unsupported file type {path.suffix!r} (expected .npy or .csv)", row, column
    )


def _rate(ctx: _Context, row: _Row, modality: str) -> float | None:
    column = f"{modality}{_HZ}"
    text = row.cells.get(column, "")
    if not text:
        return None
    try:
        rate = float(text)
    except ValueError:
        raise ctx.error(f"{text!r} is not a sampling rate in Hz", row.number, column) from None
    if not np.isfinite(rate) or rate <= 0:
        raise ctx.error(
            f"sampling rate must be a positive number of Hz, got {text}", row.number, column
        )
    return rate


def _check_channels(ctx: _Context, modality: str, rows: list[_Row], series: list[_Series]) -> None:
    first = series[0].values.shape[1]
    for row, item in zip(rows, series, strict=True):
        if item.values.shape[1] != first:
            raise ctx.error(
                f"modality {modality!r} has {first} channel(s) in row {rows[0].number} but "
                f"{item.values.shape[1]} in row {row.number}",
                row.number,
                modality,
            )


def _channel_names(modality: str, series: list[_Series]) -> tuple[str, ...]:
    """The CSV header's channel names when every file agrees, else ``<modality>_1 ...``."""
    names = series[0].names
    if names is not None and all(item.names == names for item in series):
        return tuple(names)
    return tuple(f"{modality}_{i + 1}" for i in range(series[0].values.shape[1]))


def _subject_ids(ctx: _Context, rows: list[_Row]) -> tuple[list[int], list[str]]:
    names: dict[str, int] = {}
    ids = []
    for row in rows:
        subject = row.cells["subject"]
        if not subject:
            raise ctx.error("empty subject", row.number, "subject")
        ids.append(names.setdefault(subject, len(names)))
    return ids, list(names)


def _class_names(ctx: _Context, classes: Sequence[str] | None, found: list[str]) -> list[str]:
    if classes is None:
        return sorted(set(found))
    names = [str(c) for c in classes]
    if len(set(names)) != len(names) or not names:
        raise ctx.error(f"classes must be distinct and non-empty, got {names}")
    return names


def _check_class_sizes(
    ctx: _Context,
    names: list[str],
    labels: Sequence[int],
    where: Mapping[str, tuple[str, int, str]],
    min_samples: int,
    what: str = "sample(s)",
) -> None:
    """Refuse a class with fewer than ``min_samples`` samples: a typo such as ``DD`` among
    ``A`` … ``D`` would otherwise become a class of its own.

    Args:
        where: Label → (file prefix of the message, manifest row, column) of its first
            occurrence.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(names))
    for name, count in zip(names, counts, strict=True):
        if name in where and count < min_samples:
            prefix, row, column = where[name]
            raise ctx.error(
                f"{prefix}label {name!r} occurs in {count} {what}, fewer than "
                f"min_class_samples={min_samples} (a typo?); list the real classes in "
                "data.options.classes, or lower data.options.min_class_samples",
                row,
                column,
            )


def _load_segmented(
    ctx: _Context,
    rows: list[_Row],
    modalities: list[str],
    classes: Sequence[str] | None,
    steps: Mapping[str, int] | None,
    allow_absolute: bool,
    min_class_samples: int,
) -> tuple[dict[str, np.ndarray], list[str], list[int], list[str], dict[str, StreamInfo]]:
    """Inputs, recordings, labels, class names and streams of a segmented manifest."""
    series: dict[str, list[_Series]] = {m: [] for m in modalities}
    seconds: dict[str, list[float]] = {m: [] for m in modalities}
    for row in rows:
        if not row.cells["label"]:
            raise ctx.error("empty label", row.number, "label")
        durations = {}
        for modality in modalities:
            path = _resolve(ctx, row.number, modality, row.cells[modality], allow_absolute)
            item = _load_series(ctx, row.number, modality, path)
            series[modality].append(item)
            rate, length = _rate(ctx, row, modality), len(item.values)
            if rate is not None:
                durations[modality] = length / rate
            elif item.times is not None and length > 1:
                # Span of the time stamps plus one sample period, comparable with T / rate.
                durations[modality] = (item.times[-1] - item.times[0]) * length / (length - 1)
        for modality, duration in durations.items():
            seconds[modality].append(duration)
        if len(durations) > 1:
            longest, shortest = max(durations.values()), min(durations.values())
            if longest - shortest > _DURATION_TOLERANCE * longest:
                shown = ", ".join(f"{m} {d:.3g} s" for m, d in durations.items())
                raise ctx.error(
                    f"modalities cover different durations ({shown}), more than "
                    f"{_DURATION_TOLERANCE:.0%} apart; check the files and the _hz rates",
                    row.number,
                )
    for modality in modalities:
        _check_channels(ctx, modality, rows, series[modality])
    steps = dict(steps or {})
    if set(steps) - set(modalities):
        raise ctx.error(f"steps names unknown modalities {sorted(set(steps) - set(modalities))}")
    inputs, streams = {}, {}
    for modality in modalities:
        lengths = [len(item.values) for item in series[modality]]
        count = steps.get(modality, round(float(np.median(lengths))))
        if int(count) != count or count < 1:
            raise ctx.error(f"steps[{modality!r}] must be a positive integer, got {count}")
        inputs[modality] = np.stack(
            [resample_linear(item.values.T, int(count)) for item in series[modality]]
        )
        channels = _channel_names(modality, series[modality])
        if len(seconds[modality]) == len(rows):  # every sample's duration is known
            native = "rate from the manifest"
            streams[modality] = StreamInfo.of_trials(
                int(count), seconds[modality], channels, native
            )
        else:
            streams[modality] = StreamInfo(
                None, channels, note=f"samples resampled to {int(count)} steps; rate unknown"
            )
    names = _class_names(ctx, classes, [row.cells["label"] for row in rows])
    index = {name: i for i, name in enumerate(names)}
    labels = []
    for row in rows:
        if row.cells["label"] not in index:
            raise ctx.error(
                f"label {row.cells['label']!r} is not one of the classes {names}",
                row.number,
                "label",
            )
        labels.append(index[row.cells["label"]])
    first = {}
    for row in rows:
        first.setdefault(row.cells["label"], ("", row.number, "label"))
    _check_class_sizes(ctx, names, labels, first, min_class_samples)
    recordings = [row.cells.get("recording") or str(row.number) for row in rows]
    return inputs, recordings, labels, names, streams


def _read_label_file(
    ctx: _Context, row: int, path: Path
) -> tuple[np.ndarray, list[str], list[int]]:
    """Times ``(L,)``, labels and the file's row number of each label."""
    rows = _read_csv_table(ctx, row, "label_file", path)
    for needed in ("time", "label"):
        if needed not in (rows.header or []):
            raise ctx.error(
                f"{path}: missing column {needed!r} (a label file has columns time,label)",
                row,
                "label_file",
            )
    times = _numeric(ctx, row, "label_file", rows, ["time"])
    _check_finite(ctx, row, "label_file", path, times)
    labels = rows.text("label")
    for number, label in zip(rows.row_numbers, labels, strict=True):
        if not label:
            raise ctx.error(f"{path}: row {number}: empty label", row, "label_file")
    return times[:, 0], labels, rows.row_numbers


def _load_streams(
    ctx: _Context,
    rows: list[_Row],
    modalities: list[str],
    classes: Sequence[str] | None,
    window_s: float,
    stride_s: float,
    max_gap_s: float | None,
    allow_absolute: bool,
    min_class_samples: int,
) -> tuple[
    dict[str, np.ndarray], list[str], list[int], list[str], list[int], dict[str, StreamInfo]
]:
    """Inputs, recordings, labels, class names, source row of each window and grid rates."""
    label_files = []
    for row in rows:
        path = _resolve(ctx, row.number, "label_file", row.cells["label_file"], allow_absolute)
        label_files.append((path, *_read_label_file(ctx, row.number, path)))
    names = _class_names(ctx, classes, [label for _, _, ls, _ in label_files for label in ls])
    index = {name: i for i, name in enumerate(names)}

    series: dict[str, list[_Series]] = {m: [] for m in modalities}
    row_rates: dict[str, list[float]] = {m: [] for m in modalities}
    for row in rows:
        for modality in modalities:
            path = _resolve(ctx, row.number, modality, row.cells[modality], allow_absolute)
            item = _load_series(ctx, row.number, modality, path)
            rate = _rate(ctx, row, modality)
            if item.times is None:
                if rate is None:
                    raise ctx.error(
                        f"sampling rate needed for the stream in {path}: fill column "
                        f"'{modality}{_HZ}' or give the CSV a 'time' column",
                        row.number,
                        f"{modality}{_HZ}",
                    )
                item.times = np.arange(len(item.values)) / rate
            if rate is None:
                steps = np.diff(np.unique(item.times))
                if steps.size == 0:
                    raise ctx.error(
                        f"{path}: cannot infer a sampling rate from one time stamp; fill column "
                        f"'{modality}{_HZ}'",
                        row.number,
                        modality,
                    )
                rate = 1.0 / float(np.median(steps))
            series[modality].append(item)
            row_rates[modality].append(rate)
    for modality in modalities:
        _check_channels(ctx, modality, rows, series[modality])
    # One grid rate per modality so every window has the same number of samples; the highest
    # keeps detail rather than aliasing the faster recordings.
    grid_rates = {m: max(rates) for m, rates in row_rates.items()}

    inputs: dict[str, list[np.ndarray]] = {m: [] for m in modalities}
    recordings, labels, subject_rows = [], [], []
    for i, (row, (label_path, label_times, label_names, numbers)) in enumerate(
        zip(rows, label_files, strict=True)
    ):
        for number, label in zip(numbers, label_names, strict=True):
            if label not in index:
                raise ctx.error(
                    f"{label_path}: row {number}: label {label!r} is not one of the classes "
                    f"{names}",
                    row.number,
                    "label_file",
                )
        streams = {
            m: Stream(series[m][i].times, series[m][i].values, grid_rates[m]) for m in modalities
        }
        gaps = {
            m: max_gap_s if max_gap_s is not None else 3.0 / row_rates[m][i] for m in modalities
        }
        try:
            windows = cut_windows(
                streams,
                label_times,
                np.array([index[label] for label in label_names], dtype=np.int64),
                window_s=window_s,
                stride_s=stride_s,
                max_gap_s=gaps,
            )
        except ValueError as err:
            raise ctx.error(str(err), row.number) from err
        for modality in modalities:
            inputs[modality].append(windows.inputs[modality])
        labels.extend(windows.labels.tolist())
        recording = row.cells.get("recording") or str(row.number)
        recordings.extend(f"{recording}_w{k}" for k in range(len(windows)))
        subject_rows.extend([i] * len(windows))
    if not recordings:
        raise ctx.error(
            f"no windows of {window_s} s could be cut: the streams are shorter than the window, "
            "have gaps in every window, or no label falls inside"
        )
    first = {}
    for row, (label_path, _, label_names, numbers) in zip(rows, label_files, strict=True):
        for number, label in zip(numbers, label_names, strict=True):
            first.setdefault(label, (f"{label_path}: row {number}: ", row.number, "label_file"))
    _check_class_sizes(ctx, names, labels, first, min_class_samples, "window(s)")
    stacked = {m: np.concatenate(a) for m, a in inputs.items()}
    streams = {m: StreamInfo(grid_rates[m], _channel_names(m, series[m])) for m in modalities}
    return stacked, recordings, labels, names, subject_rows, streams


@register_dataset(
    "manifest", summary="your own recordings: a manifest CSV of files per modality (see the docs)"
)
def load_manifest(
    path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    steps: Mapping[str, int] | None = None,
    window_s: float | None = None,
    stride_s: float | None = None,
    allow_absolute: bool = False,
    name: str | None = None,
    max_gap_s: float | None = None,
    min_class_samples: int = 2,
) -> PairedDataset:
    """Read a manifest CSV and its files into a :class:`PairedDataset`.

    The format is described for users in ``docs/data_format.md``.

    A manifest with a ``label`` column lists segmented samples: each modality of each row is
    resampled to ``steps[modality]`` steps by relative position. A manifest with a
    ``label_file`` column lists continuous recordings: they are cut into windows of
    ``window_s`` seconds every ``stride_s`` seconds on a common time axis
    (:func:`~dcat.io.windows.cut_windows`, majority label).

    Args:
        path: The manifest CSV. File paths inside are relative to its folder.
        classes: Class names in label order; default the sorted distinct labels found.
        steps: Segmented manifests: steps per modality; default the median length of that
            modality over the rows.
        window_s: Stream manifests (required): window length in seconds.
        stride_s: Stream manifests (required): step between window starts in seconds.
        allow_absolute: Accept absolute paths and paths leading outside the manifest's folder
            (also through a symbolic link).
        name: Data set name; default the manifest's file name without ``.csv`` (or its folder's
            name when the file is called ``manifest.csv``).
        max_gap_s: Stream manifests: drop windows overlapping a longer gap between samples;
            default 3 sample periods of each recording's own rate.
        min_class_samples: Refuse a label found in fewer samples (windows, for recordings)
            than this: a one-off label is most often a typo that would become a class.

    Returns:
        A dataset with inputs ``(N, C_m, T_m)`` per modality (``T_m = steps[m]`` for segmented
        samples, ``round(window_s * rate_m)`` for windows, where ``rate_m`` is the highest rate
        of that modality over the rows), labels indexing ``class_names``, subjects numbered from
        0 in order of first appearance (the manifest's values, in id order, are in the extra
        attribute ``subject_names``), and recordings from the ``recording`` column (default
        the row number), with ``_wK`` appended for the K-th window of a stream (from 0).

    Raises:
        DcatError: Any problem with the manifest or its files, naming the manifest, the row
            (1-based, counting data rows after the header) and the column at fault.
    """
    if isinstance(min_class_samples, bool) or min_class_samples < 1:
        raise DcatError(
            f"config: data.options.min_class_samples must be ≥ 1, got {min_class_samples!r}"
        )
    ctx = _Context(Path(path))
    header, rows = _read_manifest(ctx)
    if "subject" not in header:
        raise ctx.error("missing required column", column="subject")
    has_label, has_file = "label" in header, "label_file" in header
    if has_label == has_file:
        others = [c for c in header if c not in _RESERVED and not c.endswith("_hz")]
        hint = "" if has_label else did_you_mean(others, ["label", "label_file"])
        raise ctx.error(
            "needs exactly one of the columns 'label' (segmented samples) and 'label_file' "
            f"(continuous recordings), found {'both' if has_label else 'neither'}{hint}"
        )
    modalities = _find_modalities(ctx, header, rows)
    for modality in modalities:
        filled = [row.number for row in rows if row.cells[modality]]
        empty = [row.number for row in rows if not row.cells[modality]]
        if empty:
            also = f" but filled in row(s) {filled[:5]}" if filled else ""
            raise ctx.error(
                f"modality {modality!r} is empty in row(s) {empty[:5]}{also}; every row needs a "
                "file for every modality",
                empty[0],
                modality,
            )
    subject_ids, subject_names = _subject_ids(ctx, rows)
    if has_label:
        if window_s is not None or stride_s is not None or max_gap_s is not None:
            raise ctx.error(
                "window_s, stride_s and max_gap_s apply to continuous recordings (a label_file "
                "column); this manifest lists segmented samples (a label column)"
            )
        inputs, recordings, labels, names, streams = _load_segmented(
            ctx, rows, modalities, classes, steps, allow_absolute, min_class_samples
        )
        subjects = subject_ids
    else:
        if window_s is None or stride_s is None:
            raise ctx.error(
                "continuous recordings (a label_file column) need window_s and stride_s"
            )
        if steps is not None:
            raise ctx.error(
                "steps applies to segmented samples; windows of recordings have "
                "round(window_s * rate) steps"
            )
        inputs, recordings, labels, names, which, streams = _load_streams(
            ctx,
            rows,
            modalities,
            classes,
            window_s,
            stride_s,
            max_gap_s,
            allow_absolute,
            min_class_samples,
        )
        subjects = [subject_ids[i] for i in which]
    if name is None:
        stem = ctx.manifest.stem
        name = ctx.manifest.parent.resolve().name if stem == "manifest" else stem
    return PairedDataset(
        inputs, labels, subjects, recordings, names, name=name,
        subject_names=dict(enumerate(subject_names)), streams=streams,
    )  # fmt: skip
