"""Users' own data: a manifest CSV plus one file per modality and sample or stream (no code needed).

The format is documented for users in ``docs/data_format.md``. In short, the manifest has one row
per segmented sample (a ``label`` column) or per continuous recording (a ``label_file`` column
naming a ``time,label`` CSV), a ``subject`` column, an optional ``recording`` column, and per
modality ``NAME`` a column of paths plus an optional ``NAME_hz`` rate column (and, for
recordings, an optional ``NAME_offset_s`` clock offset). A path names a ``.npy`` / ``.csv``
series or media: a video, an audio file, a folder of image frames or a ``(T, H, W[, C])`` array
of frames (:mod:`dcat.data.manifest_media`). Paths are relative to the manifest's folder.

Nothing is silent: a row listed twice (the same files, the same span) and one subject written two
ways (``01`` and ``1``) are refused with their rows, and a ``.npy`` is told by its header, so an
unreadable or transposed array is named as such rather than as another kind of data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

import numpy as np

from dcat.data import manifest_media
from dcat.data.assemble import Recording, assemble
from dcat.data.frame_store import FrameClip, VideoClip, frame_channels
from dcat.data.paired import UNLABELLED, PairedDataset, StreamInfo, common_rate
from dcat.data.registry import register_dataset
from dcat.data.splits import loose_name
from dcat.errors import DcatError, did_you_mean
from dcat.io.resample import resample_linear
from dcat.io.table import CsvRows, TableError, is_number, non_finite, read_npy, read_rows
from dcat.io.windows import Stream, cut_windows

__all__ = ["load_manifest"]

_RESERVED = ("subject", "recording", "label", "label_file")
_FILE_TYPES = (".npy", ".csv", *manifest_media.MEDIA_SUFFIXES)
_HZ = "_hz"
_OFFSET = "_offset_s"
_DEFAULT_FRAME_CACHE = ".dcat_frames"
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


@dataclass(frozen=True)
class _Options:
    """The reading options of :func:`load_manifest` that the two loaders use.

    ``window_s``, ``stride_s``, ``max_gap_s`` and ``steps`` apply to one kind of manifest
    each; the loader of the other kind refuses them.

    Raises:
        DcatError: ``min_class_samples`` below 1 (or a bool), on construction: it needs no
            manifest to be checked.
    """

    classes: Sequence[str] | None
    steps: Mapping[str, int] | None
    window_s: float | None
    stride_s: float | None
    max_gap_s: float | None
    min_class_samples: int
    allow_absolute: bool

    def __post_init__(self) -> None:
        if isinstance(self.min_class_samples, bool) or self.min_class_samples < 1:
            raise DcatError(
                "config: data.options.min_class_samples must be ≥ 1, got "
                f"{self.min_class_samples!r}"
            )


@dataclass
class _Manifest:
    """A checked manifest: its rows, modalities and what each row's files hold.

    Attributes:
        rows: The data rows, in file order.
        modalities: The modality columns, in header order.
        segmented: A ``label`` column (segmented samples), else ``label_file`` (recordings).
        subject_ids: ``(rows,)`` each row's group id, numbered in order of first appearance.
        subject_names: The group column's values, by id.
        specs: Modality → its ``data.options.media`` options (only those given).
        kinds: Modality → ``series``, ``video`` or ``audio``.
        files: Modality → each row's (path, form).
    """

    rows: list[_Row]
    modalities: list[str]
    segmented: bool
    subject_ids: list[int]
    subject_names: list[str]
    specs: dict[str, manifest_media.MediaSpec]
    kinds: dict[str, str]
    files: dict[str, list[tuple[Path, str]]]


@dataclass
class _Loaded:
    """What a loader made of a manifest, in sample (or window) order.

    Attributes:
        recordings: ``(N,)`` samples (or windows): each one's ``(C, T)`` series and audio,
            label, group id and name.
        class_names: Class names, index = label.
        stored: Video modality → its ``(N, F, C, H, W)`` frame store.
        streams: Modality → its :class:`StreamInfo`.
    """

    recordings: list[Recording]
    class_names: list[str]
    stored: dict[str, Any]
    streams: dict[str, StreamInfo]


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


def _check_group(ctx: _Context, header: list[str], group: str) -> None:
    """The ``group`` column (``data.options.group``, default ``subject``) must be there."""
    if group in _RESERVED[1:] or group.endswith((_HZ, _OFFSET)) or not group:
        raise DcatError(
            f"config: data.options.group: {group!r} cannot group samples; name the column that "
            "says who, or which session, each row was recorded from (default 'subject')"
        )
    if group not in header:
        hint = " (data.options.group names it)" + did_you_mean([group], header)
        if group == "subject":
            hint = "; to keep other groups apart (sessions, days), name their column in "
            hint += "data.options.group"
        raise ctx.error(f"missing required column{hint}", column=group)


def _find_modalities(
    ctx: _Context, header: list[str], rows: list[_Row], reserved: Sequence[str] = _RESERVED
) -> list[str]:
    """Modality columns: those holding file paths (series, media, image folders) or having a
    ``NAME_hz`` column; ``reserved`` columns are none."""

    def is_path(cell: str) -> bool:
        return cell.lower().endswith(_FILE_TYPES) or (bool(cell) and (ctx.folder / cell).is_dir())

    modalities = [
        c
        for c in header
        if c not in reserved and (f"{c}{_HZ}" in header or any(is_path(r.cells[c]) for r in rows))
    ]
    unknown = [
        c
        for c in header
        if c not in reserved
        and c not in modalities
        and not any(c.endswith(end) and c[: -len(end)] in modalities for end in (_HZ, _OFFSET))
    ]
    if unknown:
        raise ctx.error(
            f"unknown column(s) {unknown}: allowed are subject, recording, label or label_file, "
            "a column of file paths per modality (.npy, .csv, video, audio or a folder of image "
            "frames), its NAME_hz rate column and its NAME_offset_s clock offset column"
        )
    if not modalities:
        raise ctx.error("no modality column (a column of .npy, .csv or media file paths)")
    return modalities


def _kinds(
    ctx: _Context,
    rows: list[_Row],
    modalities: list[str],
    specs: Mapping[str, manifest_media.MediaSpec],
    allow_absolute: bool,
) -> tuple[dict[str, str], dict[str, list[tuple[Path, str]]]]:
    """Each modality's kind (``series``, ``video``, ``audio``) and every row's (path, form).

    The kind is inferred from the files and must be the same in every row; a kind stated in
    ``data.options.media.NAME.kind`` overrides it (e.g. ``audio`` for waveforms stored as ``.npy``).
    """
    unknown = sorted(set(specs) - set(modalities))
    if unknown:
        raise DcatError(
            f"config: data.options.media names unknown modalities {unknown}; the manifest "
            f"{ctx.manifest} has {modalities}" + did_you_mean(unknown, modalities)
        )
    kinds, files = {}, {}
    for modality in modalities:
        stated = specs.get(modality, manifest_media.MediaSpec()).kind
        found: list[tuple[Path, str]] = []
        row_kinds: list[str] = []
        for row in rows:
            path = _resolve(ctx, row.number, modality, row.cells[modality], allow_absolute)
            try:
                kind, form = manifest_media.file_kind(path)
            except DcatError as err:
                raise ctx.error(str(err), row.number, modality) from err
            if stated == "audio" and form == "series":
                form = "waveform"  # a .npy/.csv series read as sound at its NAME_hz rate
            elif stated == "video" and kind == "series" and path.suffix.lower() == ".npy":
                shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
                problem = manifest_media.layout_problem(shape)
                raise ctx.error(f"{path}: {problem}", row.number, modality)
            elif stated is not None and stated != kind:
                raise ctx.error(
                    f"{path} holds {kind} data ({form}), but data.options.media.{modality}.kind "
                    f"says {stated}",
                    row.number,
                    modality,
                )
            found.append((path, form))
            row_kinds.append(kind)
        if len(set(row_kinds)) > 1:
            _refuse_mixed_kinds(ctx, modality, rows, row_kinds, found)
        kinds[modality] = stated or (row_kinds[0] if row_kinds else "series")
        files[modality] = found
    return kinds, files


def _refuse_mixed_kinds(
    ctx: _Context,
    modality: str,
    rows: list[_Row],
    row_kinds: list[str],
    found: list[tuple[Path, str]],
) -> None:
    """Name the row whose kind differs from most rows of the column."""
    # on a tie the first row's kind is the usual one (a set's order would vary by run)
    usual = max(dict.fromkeys(row_kinds), key=row_kinds.count)
    odd = next(i for i, kind in enumerate(row_kinds) if kind != usual)
    path, form = found[odd]
    arrays = [f for (_, f), kind in zip(found, row_kinds, strict=True) if kind == usual]
    if form == "array" and usual == "series":
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        message = (
            f"{path}: expected shape (T, C) or (T,), got {shape} (the column's other rows hold "
            "series; a (T, H, W[, C]) array is read as video frames only when every row has one)"
        )
    elif form == "series" and path.suffix.lower() == ".npy" and "array" in arrays:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        message = (
            f"{path}: {manifest_media.layout_problem(shape)} (the column's other rows hold "
            "frame arrays)"
        )
    else:
        message = (
            f"modality {modality!r} mixes kinds: {path} holds {row_kinds[odd]} data, the "
            f"column's other rows {usual}; one column holds one sensor"
        )
    raise ctx.error(message, rows[odd].number, modality)


def _refuse_duplicates(
    ctx: _Context,
    rows: list[_Row],
    modalities: list[str],
    files: Mapping[str, list[tuple[Path, str]]],
    allow_absolute: bool,
) -> None:
    """Refuse two rows of one sample: the same file for every modality and, for recordings,
    the same label file (the same span) and clock offsets.

    A copy trains twice, and an id split can put the two copies in training and test parts.
    """
    seen: dict[tuple, _Row] = {}
    for i, row in enumerate(rows):
        key: tuple = tuple(files[m][i][0].resolve() for m in modalities)
        if "label_file" in row.cells:
            label_file = _resolve(ctx, row.number, "label_file", row.cells["label_file"],
                                  allow_absolute)  # fmt: skip
            offsets = tuple(_offset(ctx, row, m) for m in modalities)
            key += (label_file.resolve(), offsets)
        first = seen.setdefault(key, row)
        if first is not row:
            shown = ", ".join(f"{m} {row.cells[m]!r}" for m in modalities)
            span = " and label file" if "label_file" in row.cells else ""
            raise ctx.error(
                f"duplicates row {first.number}: the same files{span} ({shown}), so the same "
                "sample twice: it would train twice, and an id split can put the copies in "
                "training and test; remove one, or set data.options.duplicates: keep",
                row.number,
            )


def _offset(ctx: _Context, row: _Row, modality: str) -> float:
    """The ``NAME_offset_s`` cell: when the sensor's clock starts on the common axis."""
    column = f"{modality}{_OFFSET}"
    text = row.cells.get(column, "")
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ctx.error(f"{text!r} is not an offset in seconds", row.number, column) from None
    if not np.isfinite(value):
        raise ctx.error(
            f"offset must be a finite number of seconds, got {text}", row.number, column
        )
    return value


def _channel_names_of(kind: str, modality: str, channels: int) -> tuple[str, ...]:
    if kind == "video":
        return frame_channels(channels == 1)
    if channels == 1:
        return ("audio",) if kind == "audio" else (modality,)
    return tuple(f"{modality}_{i + 1}" for i in range(channels))


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
    if not target.is_file() and not target.is_dir():
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


def _check_channels(
    ctx: _Context,
    modality: str,
    rows: list[_Row],
    series: list[_Series],
    paths: list[Path] | None = None,
) -> None:
    """One channel count in every row; a file saved as ``(C, T)`` is named as such.

    Args:
        paths: Each row's file, to name one that looks transposed.
    """
    first = series[0].values.shape
    for i, (row, item) in enumerate(zip(rows, series, strict=True)):
        shape = item.values.shape
        if shape[1] == first[1]:
            continue
        # (C, T) among (T, C) files, or every file (C, T): the first axis is what agrees
        bad = None
        if shape[0] == first[1] < shape[1]:
            bad = i
        elif first[0] == shape[0] and first[0] < first[1] and shape[0] < shape[1]:
            bad = 0
        hint = ""
        if bad is not None and paths is not None and paths[bad].suffix.lower() == ".npy":
            hint = "; " + _transposed(modality, paths[bad], series[bad].values.shape, 1, None)
        raise ctx.error(
            f"modality {modality!r} has {first[1]} channel(s) in row {rows[0].number} but "
            f"{shape[1]} in row {row.number}{hint}",
            row.number,
            modality,
        )


def _channel_names(modality: str, series: list[_Series]) -> tuple[str, ...]:
    """The CSV header's channel names when every file agrees, else ``<modality>_1 ...``."""
    names = series[0].names
    if names is not None and all(item.names == names for item in series):
        return tuple(names)
    return tuple(f"{modality}_{i + 1}" for i in range(series[0].values.shape[1]))


def _subject_ids(
    ctx: _Context, rows: list[_Row], column: str = "subject"
) -> tuple[list[int], list[str]]:
    """Each row's subject id (numbered in order of first appearance) and the names by id.

    Names are compared as written, so two spellings of one name (``01`` and ``1``, ``Anna``
    and ``anna``: one :func:`~dcat.data.splits.loose_name`) would be two subjects, one of them
    silently left out of an explicit split, or on both sides of a random one; refused.
    """
    names: dict[str, int] = {}
    ids: list[int] = []
    rows_of: dict[str, list[int]] = {}
    for row in rows:
        subject = row.cells[column]
        if not subject:
            raise ctx.error(f"empty {column}", row.number, column)
        ids.append(names.setdefault(subject, len(names)))
        rows_of.setdefault(subject, []).append(row.number)
    spellings: dict[str, list[str]] = {}
    for name in names:
        spellings.setdefault(loose_name(name), []).append(name)
    for written in spellings.values():
        if len(written) > 1:
            # the rarer spelling is the slip; the commoner one is the suggestion
            usual, odd = sorted(written, key=lambda n: (-len(rows_of[n]), rows_of[n][0]))[:2]
            raise ctx.error(
                f"{column} {odd!r} (row(s) {rows_of[odd][:5]}) and {usual!r} (row(s) "
                f"{rows_of[usual][:5]}) differ only in case, spaces or leading zeros; did you "
                f"mean {usual!r}? Names are compared as written, so these would be two "
                f"{column}s: write each {column} one way",
                rows_of[odd][0],
                column,
            )
    return ids, list(names)


def _class_names(ctx: _Context, classes: Sequence[str] | None, found: list[str]) -> list[str]:
    if classes is None:
        found_names = sorted(set(found) - {""})  # an empty label: the sample is unlabelled
        if not found_names:
            raise ctx.error(
                "every label is empty: no class to learn (label some samples, or list the "
                "classes in data.options.classes)"
            )
        return found_names
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
    known = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(known[known != UNLABELLED], minlength=len(names))
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


@dataclass
class _Samples:
    """What the rows of a segmented manifest hold, per modality, in row order.

    Attributes:
        series: Series modality (waveforms stored as series included) → each row's series.
        sources: Media modality → each row's probed file (nothing decoded yet).
        seconds: Modality → the seconds each row's file covers, for the rows where that is
            known (a series without a rate or time stamps has none).
    """

    series: dict[str, list[_Series]]
    sources: dict[str, list[manifest_media.Source]]
    seconds: dict[str, list[float]]


def _load_segmented(
    ctx: _Context, manifest: _Manifest, options: _Options, frame_cache: Path
) -> _Loaded:
    """The samples of a segmented manifest, one per row, each resampled to its steps.

    Args:
        ctx: The manifest, for messages.
        manifest: Its checked rows and files (a ``label`` column).
        options: The reading options; the window options must be unset.
        frame_cache: Folder of the decoded-frame cache.

    Returns:
        Inputs ``(rows, C, steps)`` per series or audio modality and a frame store
        ``(rows, F, C, H, W)`` per video modality; recordings from the ``recording`` column
        (default the row number).

    Raises:
        DcatError: A window option set, or any problem of a row, its files or its label.
    """
    if (
        options.window_s is not None
        or options.stride_s is not None
        or options.max_gap_s is not None
    ):
        raise ctx.error(
            "window_s, stride_s and max_gap_s apply to continuous recordings (a label_file "
            "column); this manifest lists segmented samples (a label column)"
        )
    samples = _read_samples(ctx, manifest)
    inputs, streams = _segmented_inputs(ctx, manifest, samples, options.steps, frame_cache)
    labels, names = _segmented_labels(ctx, manifest.rows, options)
    stored = {m: inputs[m] for m in manifest.modalities if manifest.kinds[m] == "video"}
    recordings = [
        Recording(
            {m: inputs[m][i] for m in manifest.modalities if m not in stored},
            label,
            manifest.subject_ids[i],
            row.cells.get("recording") or str(row.number),
        )
        for i, (row, label) in enumerate(zip(manifest.rows, labels, strict=True))
    ]
    return _Loaded(recordings, names, stored, streams)


def _read_samples(ctx: _Context, manifest: _Manifest) -> _Samples:
    """Read every row's series and probe its media, checking each row's durations agree and
    each series modality's channel count is the same in every row."""
    modalities, files = manifest.modalities, manifest.files
    series_mods = [m for m in modalities if manifest.kinds[m] == "series" or _is_waveform(files[m])]
    samples = _Samples(
        {m: [] for m in series_mods},
        {m: [] for m in modalities if m not in series_mods},
        {m: [] for m in modalities},
    )
    for i, row in enumerate(manifest.rows):
        _check_sample_row(ctx, row, modalities)
        durations: dict[str, float] = {}
        arrays: dict[str, tuple[Path, float]] = {}
        for modality in modalities:
            path, form = files[modality][i]
            duration, array_rate = _read_sample(ctx, row, modality, path, form, samples)
            if duration is not None:
                durations[modality] = duration
            if array_rate is not None:
                arrays[modality] = (path, array_rate)
        for modality, duration in durations.items():
            samples.seconds[modality].append(duration)
        _check_durations(ctx, row.number, durations, arrays)
    for modality in series_mods:
        paths = [path for path, _ in files[modality]]
        _check_channels(ctx, modality, manifest.rows, samples.series[modality], paths)
    return samples


def _check_sample_row(ctx: _Context, row: _Row, modalities: list[str]) -> None:
    """A segmented row takes no clock offsets (an empty label makes it unlabelled)."""
    offset = [m for m in modalities if row.cells.get(f"{m}{_OFFSET}")]
    if offset:
        raise ctx.error(
            "clock offsets apply to continuous recordings (a label_file column); a segmented "
            "sample's files each cover the sample",
            row.number,
            f"{offset[0]}{_OFFSET}",
        )


def _read_sample(
    ctx: _Context, row: _Row, modality: str, path: Path, form: str, samples: _Samples
) -> tuple[float | None, float | None]:
    """Read (series) or probe (media) one modality's file of a segmented row into ``samples``.

    Returns:
        The seconds the file covers (``None`` when neither a rate nor time stamps tell), and
        for a file stored as an array (a ``.npy`` series with a rate, a frame array) its rate,
        so that one saved transposed can be named; else ``None``.
    """
    rate = _rate(ctx, row, modality)
    if modality in samples.sources:
        source = manifest_media.probe(ctx.error, row.number, modality, path, form, rate)
        samples.sources[modality].append(source)
        return source.duration_s, source.rate_hz if form == "array" else None
    item = _load_series(ctx, row.number, modality, path)
    samples.series[modality].append(item)
    length = len(item.values)
    if rate is not None:
        return length / rate, rate if path.suffix.lower() == ".npy" else None
    if item.times is not None and length > 1:
        # Span of the time stamps plus one sample period, comparable with T / rate.
        return (item.times[-1] - item.times[0]) * length / (length - 1), None
    return None, None


def _segmented_inputs(
    ctx: _Context,
    manifest: _Manifest,
    samples: _Samples,
    steps: Mapping[str, int] | None,
    frame_cache: Path,
) -> tuple[dict[str, Any], dict[str, StreamInfo]]:
    """Each modality's samples brought to one length, and its stream.

    Returns:
        Modality → ``(rows, C, steps)`` array (series, audio) or ``(rows, F, C, H, W)`` frame
        store (video, decoded into ``frame_cache``), and modality → its :class:`StreamInfo`.
    """
    modalities, rows = manifest.modalities, manifest.rows
    steps = dict(steps or {})
    if set(steps) - set(modalities):
        raise ctx.error(f"steps names unknown modalities {sorted(set(steps) - set(modalities))}")
    inputs: dict[str, Any] = {}
    streams: dict[str, StreamInfo] = {}
    for modality in modalities:
        spec = manifest.specs.get(modality, manifest_media.MediaSpec())
        if manifest.kinds[modality] == "video":
            if modality in steps:
                raise ctx.error(
                    f"steps[{modality!r}] does not apply to video; set "
                    f"data.options.media.{modality}.frames (frames per sample)"
                )
            inputs[modality], streams[modality] = _segmented_frames(
                ctx, modality, spec, samples.sources[modality], samples.seconds[modality],
                frame_cache,
            )  # fmt: skip
        elif manifest.kinds[modality] == "audio":
            inputs[modality], streams[modality] = _segmented_audio(
                ctx, modality, spec, rows, samples.sources.get(modality),
                samples.series.get(modality), steps.get(modality),
            )  # fmt: skip
        else:
            inputs[modality], streams[modality] = _segmented_series(
                ctx, modality, samples.series[modality], samples.seconds[modality], len(rows),
                steps,
            )  # fmt: skip
    return inputs, streams


def _segmented_series(
    ctx: _Context,
    modality: str,
    series: list[_Series],
    seconds: list[float],
    row_count: int,
    steps: Mapping[str, int],
) -> tuple[np.ndarray, StreamInfo]:
    """Series resampled by relative position to ``steps[modality]`` steps (default their
    median length).

    Args:
        series: Each row's ``(T, C)`` values.
        seconds: The seconds each row covers, where known.
        row_count: The number of rows, to tell whether every duration is known.
        steps: Modality → steps, as configured.

    Returns:
        ``(row_count, C, steps)`` float32, and the stream: its rate made from the durations when
        every row's is known, else unknown.
    """
    lengths = [len(item.values) for item in series]
    count = steps.get(modality, round(float(np.median(lengths))))
    if int(count) != count or count < 1:
        raise ctx.error(f"steps[{modality!r}] must be a positive integer, got {count}")
    stacked = np.stack([resample_linear(item.values.T, int(count)) for item in series])
    channels = _channel_names(modality, series)
    if len(seconds) != row_count:
        return stacked, StreamInfo(
            None, channels, note=f"samples resampled to {int(count)} steps; rate unknown"
        )
    rates = [len(item.values) / d for item, d in zip(series, seconds, strict=True)]
    info = StreamInfo.of_trials(
        int(count), seconds, channels, "rate from the manifest", native_hz=common_rate(rates)
    )
    return stacked, info


def _segmented_labels(
    ctx: _Context, rows: list[_Row], options: _Options
) -> tuple[list[int], list[str]]:
    """Each row's class index and the class names (given, or the sorted labels found).

    Raises:
        DcatError: A label not among given classes, or a class with fewer than
            ``min_class_samples`` rows.
    """
    names = _class_names(ctx, options.classes, [row.cells["label"] for row in rows])
    index = {name: i for i, name in enumerate(names)}
    labels = []
    for row in rows:
        if not row.cells["label"]:
            labels.append(UNLABELLED)
            continue
        if row.cells["label"] not in index:
            raise ctx.error(
                f"label {row.cells['label']!r} is not one of the classes {names}",
                row.number,
                "label",
            )
        labels.append(index[row.cells["label"]])
    first: dict[str, tuple[str, int, str]] = {}
    for row in rows:
        first.setdefault(row.cells["label"], ("", row.number, "label"))
    _check_class_sizes(ctx, names, labels, first, options.min_class_samples)
    return labels, names


def _check_durations(
    ctx: _Context,
    row: int,
    durations: Mapping[str, float],
    arrays: Mapping[str, tuple[Path, float]],
) -> None:
    """Refuse a segmented row whose modalities cover different durations, naming the array
    that reads as the others' duration with another axis as time (saved transposed).

    Args:
        durations: Modality → seconds its file covers.
        arrays: Modality → its ``.npy`` file and rate, for those stored as arrays.
    """
    if len(durations) < 2:
        return
    longest, shortest = max(durations.values()), min(durations.values())
    if longest - shortest <= _DURATION_TOLERANCE * longest:
        return
    shown = ", ".join(f"{m} {d:.3g} s" for m, d in durations.items())
    hint = "check the files and the _hz rates"
    for modality, (path, rate) in arrays.items():
        others = [d for m, d in durations.items() if m != modality]
        if max(others) - min(others) > _DURATION_TOLERANCE * max(others):
            continue  # the others disagree among themselves: no one duration to match
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        axis = _time_axis(shape, rate, float(np.median(others)))
        if axis is not None:
            hint = _transposed(modality, path, shape, axis, rate)
            break
    raise ctx.error(
        f"modalities cover different durations ({shown}), more than "
        f"{_DURATION_TOLERANCE:.0%} apart; {hint}",
        row,
    )


def _time_axis(shape: tuple[int, ...], rate: float, seconds: float) -> int | None:
    """The axis other than the first whose length at ``rate`` spans ``seconds``, if any."""
    for axis in range(1, len(shape)):
        span = shape[axis] / rate
        if abs(span - seconds) <= _DURATION_TOLERANCE * max(span, seconds):
            return axis
    return None


def _transposed(
    modality: str, path: Path, shape: tuple[int, ...], axis: int, rate: float | None
) -> str:
    """What to say of an array of ``shape`` whose ``axis`` looks like time."""
    wanted = ("T", "C") if len(shape) == 2 else ("T", "H", "W", "C")[: len(shape)]
    saved = [*wanted[1:]]
    saved.insert(axis, "T")
    fix = "array.T" if len(shape) == 2 else f"np.moveaxis(array, {axis}, 0)"
    span = f", {shape[axis] / rate:.3g} s at {rate:g} Hz" if rate else ""
    return (
        f"{modality}: {path} has shape {shape}, and its axis {axis} ({shape[axis]} steps{span}) "
        f"looks like time: it seems saved as ({', '.join(saved)}); save it as "
        f"({', '.join(wanted)}) ({fix})"
    )


def _is_waveform(files: list[tuple[Path, str]]) -> bool:
    """Audio stored as a ``.npy``/``.csv`` series (``data.options.media.NAME.kind: audio``)."""
    return bool(files) and files[0][1] == "waveform"


def _segmented_frames(
    ctx: _Context,
    modality: str,
    spec: manifest_media.MediaSpec,
    sources: list[manifest_media.Source],
    seconds: list[float],
    frame_cache: Path,
) -> tuple[Any, StreamInfo]:
    """One clip per sample, ``frames`` evenly over each, into the frame cache."""
    manifest_media.check_sources(ctx.error, modality, "video", spec, sources)
    size, gray = manifest_media.frame_layout(spec, sources)
    frames = spec.frames
    if frames is None:
        frames = (
            round(float(np.median(seconds)) * spec.fps)
            if spec.fps
            else manifest_media.DEFAULT_FRAMES
        )
    vrange = manifest_media.value_range(spec, sources)
    clips = [(s, manifest_media.clip_of(s, 0.0, None, vrange)) for s in sources]
    store = manifest_media.build_frames(
        ctx.error, modality, clips, frame_cache, max(1, frames), size, gray
    )
    native = f"{float(np.median([s.rate_hz for s in sources])):g} fps"
    info = StreamInfo.of_trials(
        max(1, frames), seconds, _channel_names_of("video", modality, 1 if gray else 3), native,
        native_hz=common_rate([s.rate_hz for s in sources]), kind="video", value_range=vrange,
    )  # fmt: skip
    return store, info


def _segmented_audio(
    ctx: _Context,
    modality: str,
    spec: manifest_media.MediaSpec,
    rows: list[_Row],
    sources: list[manifest_media.Source] | None,
    series: list[_Series] | None,
    steps: int | None,
) -> tuple[np.ndarray, StreamInfo]:
    """Audio samples at their sample rate, zero-padded or cut at the end to ``steps``."""
    if sources is not None:
        manifest_media.check_sources(ctx.error, modality, "audio", spec, sources)
        clips = [manifest_media.read_audio_source(ctx.error, modality, s, spec) for s in sources]
        rate = float(spec.sample_rate or sources[0].rate_hz)
    else:  # waveforms stored as series, at the NAME_hz rate of every row
        assert series is not None
        rates = {_rate(ctx, row, modality) for row in rows}
        if None in rates or len(rates) != 1:
            raise ctx.error(
                f"audio stored as series needs one sample rate in column '{modality}{_HZ}' of "
                "every row",
                column=f"{modality}{_HZ}",
            )
        rate = float(cast(float, rates.pop()))  # not None: refused above
        clips = [item.values.T.astype(np.float32) for item in series]
        if spec.mono:
            clips = [c.mean(axis=0, keepdims=True) for c in clips]
        _check_channels(ctx, modality, rows, [_Series(c.T, None) for c in clips])
    count = steps if steps is not None else round(float(np.median([c.shape[1] for c in clips])))
    if int(count) != count or count < 1:
        raise ctx.error(f"steps[{modality!r}] must be a positive integer, got {count}")
    count = int(count)
    out = np.zeros((len(clips), clips[0].shape[0], count), dtype=np.float32)
    for i, clip in enumerate(clips):
        out[i, :, : min(count, clip.shape[1])] = clip[:, :count]
    info = StreamInfo(
        rate,
        _channel_names_of("audio", modality, out.shape[1]),
        note=f"clips zero-padded or cut at the end to {count} samples ({count / rate:.3g} s)",
        kind="audio",
        **(_recording_rate([s.rate_hz for s in sources], rate) if sources is not None else {}),
    )
    return out, info


def _recording_rate(rates: Sequence[float], grid_hz: float) -> dict[str, Any]:
    """:class:`StreamInfo` fields for recordings at ``rates`` (Hz) brought to ``grid_hz``: their
    one rate (unknown when they differ), and whether the grid differs from it."""
    native = common_rate(rates)
    return {"recording_rate_hz": native, "resampled": native != grid_hz}


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
    # an empty label is a moment known to be unlabelled: its span's windows have no label
    return times[:, 0], rows.text("label"), rows.row_numbers


class _LabelFile(NamedTuple):
    """A recording's ``time,label`` file."""

    path: Path
    times: np.ndarray  # (L,) seconds on the common time axis
    labels: list[str]  # (L,)
    numbers: list[int]  # (L,) the file's row of each label, for messages


@dataclass(frozen=True)
class _Windowing:
    """How recordings are cut: windows of ``window_s`` seconds every ``stride_s`` seconds,
    dropping those across a gap longer than ``max_gap_s`` (default per recording)."""

    window_s: float
    stride_s: float
    max_gap_s: float | None


@dataclass
class _Recordings:
    """What the rows of a stream manifest hold, per modality, in row order, before windowing.

    Attributes:
        specs: Modality → its media options (defaults where none are given).
        video: The video modalities, decoded per window into the frame cache.
        sounds: The audio modalities stored as audio files.
        series: Every other modality → each row's series, times on the common axis.
        sources: Video and sound modality → each row's probed file, offset on the common axis.
        row_rates: Modality → each row's own rate in Hz.
    """

    specs: dict[str, manifest_media.MediaSpec]
    video: list[str]
    sounds: list[str]
    series: dict[str, list[_Series]]
    sources: dict[str, list[manifest_media.Source]]
    row_rates: dict[str, list[float]]


@dataclass
class _Cut:
    """The windows cut from every row of a stream manifest, in row order.

    Attributes:
        windows: ``(N,)`` each window: its ``(C, T)`` series and audio, class index, its row's
            group id and its name, ``<recording>_w<k>``.
        clips: Video modality → one (file, clip) per window, to decode into the frame cache.
    """

    windows: list[Recording]
    clips: dict[str, list[tuple[manifest_media.Source, VideoClip | FrameClip]]]


def _load_streams(
    ctx: _Context, manifest: _Manifest, options: _Options, frame_cache: Path
) -> _Loaded:
    """The windows of a stream manifest's recordings, on a common time axis.

    Every sensor's samples are placed on the common time axis: a sample at ``t`` seconds of
    the sensor's own clock is at ``t + NAME_offset_s``. Video frame times come from the
    container (image folders and frame arrays: frame ``i`` at ``i / NAME_hz``).

    Args:
        ctx: The manifest, for messages.
        manifest: Its checked rows and files (a ``label_file`` column).
        options: The reading options; ``window_s`` and ``stride_s`` set, ``steps`` not.
        frame_cache: Folder of the decoded-frame cache.

    Returns:
        Inputs ``(N, C, round(window_s * rate))`` per series or audio modality, at one grid
        rate per modality, and a frame store ``(N, F, C, H, W)`` per video modality; each
        window's subject is its row's.

    Raises:
        DcatError: Missing or misplaced options, any problem of a row or its files, or no
            window cut at all.
    """
    windowing = _windowing(ctx, options)
    label_files = _read_label_files(ctx, manifest.rows, options.allow_absolute)
    names = _class_names(ctx, options.classes, [label for f in label_files for label in f.labels])
    recs = _read_recordings(ctx, manifest, windowing.window_s)
    grid_rates = _grid_rates(recs)
    layouts = {m: manifest_media.frame_layout(recs.specs[m], recs.sources[m]) for m in recs.video}
    vranges = {m: manifest_media.value_range(recs.specs[m], recs.sources[m]) for m in recs.video}
    cut = _cut_recordings(ctx, manifest, label_files, names, recs, grid_rates, vranges, windowing)
    first = _first_labels(manifest.rows, label_files)
    labels = [window.label for window in cut.windows]
    _check_class_sizes(ctx, names, labels, first, options.min_class_samples, "window(s)")
    stored, streams = _window_streams(
        ctx, manifest, recs, cut, grid_rates, layouts, vranges, windowing.window_s, frame_cache
    )
    return _Loaded(cut.windows, names, stored, streams)


def _windowing(ctx: _Context, options: _Options) -> _Windowing:
    """The window options, which a stream manifest needs, and ``steps``, which it refuses."""
    if options.window_s is None or options.stride_s is None:
        raise ctx.error("continuous recordings (a label_file column) need window_s and stride_s")
    if options.steps is not None:
        raise ctx.error(
            "steps applies to segmented samples; windows of recordings have "
            "round(window_s * rate) steps"
        )
    return _Windowing(options.window_s, options.stride_s, options.max_gap_s)


def _read_label_files(ctx: _Context, rows: list[_Row], allow_absolute: bool) -> list[_LabelFile]:
    """Each row's label file, read and checked."""
    label_files = []
    for row in rows:
        path = _resolve(ctx, row.number, "label_file", row.cells["label_file"], allow_absolute)
        label_files.append(_LabelFile(path, *_read_label_file(ctx, row.number, path)))
    return label_files


def _read_recordings(ctx: _Context, manifest: _Manifest, window_s: float) -> _Recordings:
    """Read every row's series and probe its media, each placed on the common time axis;
    each modality's channels (series) or frame size, channels and rate (media) must agree
    over the rows."""
    modalities, kinds, files = manifest.modalities, manifest.kinds, manifest.files
    video = [m for m in modalities if kinds[m] == "video"]
    sounds = [m for m in modalities if kinds[m] == "audio" and not _is_waveform(files[m])]
    recs = _Recordings(
        {m: manifest.specs.get(m, manifest_media.MediaSpec()) for m in modalities},
        video,
        sounds,
        {m: [] for m in modalities if m not in video + sounds},
        {m: [] for m in video + sounds},
        {m: [] for m in modalities},
    )
    for i, row in enumerate(manifest.rows):
        for modality in modalities:
            path, form = files[modality][i]
            rate, offset = _rate(ctx, row, modality), _offset(ctx, row, modality)
            if modality in recs.sources:
                shortest = window_s if modality in video else None
                source = _probe_recording(ctx, row, modality, path, form, rate, offset, shortest)
                recs.sources[modality].append(source)
                recs.row_rates[modality].append(source.rate_hz)
            else:
                item, rate = _recording_series(ctx, row, modality, path, rate, offset)
                recs.series[modality].append(item)
                recs.row_rates[modality].append(rate)
    for modality in recs.series:
        paths = [path for path, _ in files[modality]]
        _check_channels(ctx, modality, manifest.rows, recs.series[modality], paths)
    for modality in recs.sources:
        manifest_media.check_sources(
            ctx.error, modality, kinds[modality], recs.specs[modality], recs.sources[modality]
        )
    return recs


def _probe_recording(
    ctx: _Context,
    row: _Row,
    modality: str,
    path: Path,
    form: str,
    rate: float | None,
    offset: float,
    shortest: float | None,
) -> manifest_media.Source:
    """Probe one row's media file of a stream manifest.

    Args:
        rate: The row's ``NAME_hz`` cell, if filled.
        offset: When the sensor's clock starts on the common axis, in seconds.
        shortest: The fewest seconds the file may last (one window, for video); ``None``: any.
    """
    source = manifest_media.probe(ctx.error, row.number, modality, path, form, rate, offset)
    if shortest is not None and source.duration_s < shortest:
        raise ctx.error(
            f"{path} lasts {source.duration_s:.3g} s, shorter than one window of {shortest:g} s",
            row.number,
            modality,
        )
    return source


def _recording_series(
    ctx: _Context, row: _Row, modality: str, path: Path, rate: float | None, offset: float
) -> tuple[_Series, float]:
    """One row's series of a stream manifest, its times on the common axis.

    Args:
        rate: The row's ``NAME_hz`` cell, if filled; else the CSV's ``time`` column must
            tell it.
        offset: When the sensor's clock starts on the common axis, in seconds.

    Returns:
        The series, with ``(T,)`` times, and its rate in Hz (given, or the median step of
        the time stamps).
    """
    item = _load_series(ctx, row.number, modality, path)
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
    item.times = item.times + offset
    return item, rate


def _grid_rates(recs: _Recordings) -> dict[str, float]:
    """Each modality's rate in the windows: the video ``fps`` or audio ``sample_rate``
    option where given, else the highest of its rows' rates."""
    # One grid rate per modality so every window has the same number of samples; the highest
    # keeps detail rather than aliasing the faster recordings.
    grid_rates = {m: max(rates) for m, rates in recs.row_rates.items()}
    for modality in recs.video:
        grid_rates[modality] = recs.specs[modality].fps or grid_rates[modality]
    for modality in recs.sounds:
        grid_rates[modality] = float(recs.specs[modality].sample_rate or grid_rates[modality])
    return grid_rates


def _cut_recordings(
    ctx: _Context,
    manifest: _Manifest,
    label_files: list[_LabelFile],
    names: list[str],
    recs: _Recordings,
    grid_rates: Mapping[str, float],
    vranges: Mapping[str, tuple[float, float] | None],
    windowing: _Windowing,
) -> _Cut:
    """Cut every row's recordings into labelled windows, one row after another.

    Args:
        manifest: The checked manifest: its rows and their group ids.
        names: The class names.
        grid_rates: Modality → its rate in the windows.
        vranges: Video modality → the values mapped to ``0…255`` (``None``: 8-bit frames).

    Raises:
        DcatError: A label not among the classes, a row whose streams cannot be cut, or no
            window at all.
    """
    index = {name: i for i, name in enumerate(names)}
    in_memory = [*recs.series, *recs.sounds]
    cut = _Cut([], {m: [] for m in recs.video})
    for i, (row, label_file) in enumerate(zip(manifest.rows, label_files, strict=True)):
        _check_labels(ctx, row, label_file, index, names)
        streams, gaps = _row_streams(ctx, i, recs, grid_rates, windowing.max_gap_s)
        try:
            windows = cut_windows(
                streams,
                label_file.times,
                # an empty label (a moment known to be unlabelled) is UNLABELLED
                np.array([index.get(label, UNLABELLED) for label in label_file.labels]),
                window_s=windowing.window_s,
                stride_s=windowing.stride_s,
                max_gap_s=gaps,
            )
        except ValueError as err:
            raise ctx.error(str(err), row.number) from err
        for modality in recs.video:
            source = recs.sources[modality][i]
            cut.clips[modality].extend(
                (source, manifest_media.clip_of(source, start - source.offset_s,
                                                windowing.window_s, vranges[modality]))
                for start in windows.starts
            )  # fmt: skip
        recording = row.cells.get("recording") or str(row.number)
        cut.windows.extend(
            Recording({m: windows.inputs[m][k] for m in in_memory}, label,
                      manifest.subject_ids[i], f"{recording}_w{k}")
            for k, label in enumerate(windows.labels.tolist())
        )  # fmt: skip
    if not cut.windows:
        raise ctx.error(
            f"no windows of {windowing.window_s} s could be cut: the streams are shorter than "
            "the window, have gaps in every window, or no label falls inside"
        )
    return cut


def _check_labels(
    ctx: _Context, row: _Row, label_file: _LabelFile, index: Mapping[str, int], names: list[str]
) -> None:
    """Every label of a row's label file must be one of the classes."""
    for number, label in zip(label_file.numbers, label_file.labels, strict=True):
        if label and label not in index:
            raise ctx.error(
                f"{label_file.path}: row {number}: label {label!r} is not one of the classes "
                f"{names}",
                row.number,
                "label_file",
            )


def _row_streams(
    ctx: _Context,
    i: int,
    recs: _Recordings,
    grid_rates: Mapping[str, float],
    max_gap_s: float | None,
) -> tuple[dict[str, Stream], dict[str, float]]:
    """Row ``i``'s streams for :func:`~dcat.io.windows.cut_windows` and each one's largest
    gap (default 3 sample periods); its audio files are read here, one row at a time.

    Returns:
        Modality → :class:`Stream` (a video's only bounds the span: its frames are decoded
        per window), and modality → the largest gap in seconds.
    """
    streams, gaps = {}, {}
    for m in recs.series:
        item = recs.series[m][i]
        times = cast(np.ndarray, item.times)  # set by _recording_series
        streams[m] = Stream(times, item.values, grid_rates[m])
        gaps[m] = max_gap_s if max_gap_s is not None else 3.0 / recs.row_rates[m][i]
    for m in recs.sounds:
        source = recs.sources[m][i]
        audio = manifest_media.read_audio_source(ctx.error, m, source, recs.specs[m])
        times = source.offset_s + np.arange(audio.shape[1]) / grid_rates[m]
        streams[m] = Stream(times, audio.T, grid_rates[m])
        gaps[m] = max_gap_s if max_gap_s is not None else 3.0 / grid_rates[m]
    for m in recs.video:
        source = recs.sources[m][i]
        span = np.array([source.offset_s, source.offset_s + source.duration_s])
        streams[m] = Stream(span, np.zeros((2, 1)), grid_rates[m])
        gaps[m] = source.duration_s + 1.0
    return streams, gaps


def _first_labels(
    rows: list[_Row], label_files: list[_LabelFile]
) -> dict[str, tuple[str, int, str]]:
    """Label → where it first occurs (file and row prefix, manifest row, column)."""
    first: dict[str, tuple[str, int, str]] = {}
    for row, label_file in zip(rows, label_files, strict=True):
        for number, label in zip(label_file.numbers, label_file.labels, strict=True):
            where = f"{label_file.path}: row {number}: "
            first.setdefault(label, (where, row.number, "label_file"))
    return first


def _window_streams(
    ctx: _Context,
    manifest: _Manifest,
    recs: _Recordings,
    cut: _Cut,
    grid_rates: Mapping[str, float],
    layouts: Mapping[str, tuple[tuple[int, int], bool]],
    vranges: Mapping[str, tuple[float, float] | None],
    window_s: float,
    frame_cache: Path,
) -> tuple[dict[str, Any], dict[str, StreamInfo]]:
    """Each video modality's windows of every row together, and each modality's stream.

    Args:
        layouts: Video modality → stored frame size ``(H, W)`` and greyscale flag.
        vranges: Video modality → the values mapped to ``0…255`` (``None``: 8-bit frames).

    Returns:
        Video modality → ``(N, F, C, H, W)`` frame store (decoded into ``frame_cache``), and
        modality → its :class:`StreamInfo`, in the manifest's modality order.
    """
    stored: dict[str, Any] = {}
    streams = {}
    for m in manifest.modalities:
        if m in recs.video:
            size, gray = layouts[m]
            frames = round(window_s * grid_rates[m])
            stored[m] = manifest_media.build_frames(
                ctx.error, m, cut.clips[m], frame_cache, frames, size, gray
            )
            streams[m] = StreamInfo(
                grid_rates[m], _channel_names_of("video", m, 1 if gray else 3),
                note=f"windows of {window_s:g} s, {frames} frames each", kind="video",
                value_range=vranges[m], **_recording_rate(recs.row_rates[m], grid_rates[m]),
            )  # fmt: skip
        elif manifest.kinds[m] == "audio":
            channels = cut.windows[0].inputs[m].shape[0]
            streams[m] = StreamInfo(
                grid_rates[m], _channel_names_of("audio", m, channels),
                note="windows of continuous streams", kind="audio",
                **_recording_rate(recs.row_rates[m], grid_rates[m]),
            )  # fmt: skip
        else:
            streams[m] = StreamInfo(
                grid_rates[m], _channel_names(m, recs.series[m]),
                **_recording_rate(recs.row_rates[m], grid_rates[m]),
            )  # fmt: skip
    return stored, streams


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
    media: Mapping[str, Mapping[str, Any]] | None = None,
    frame_cache: str | Path | None = None,
    duplicates: Literal["refuse", "keep"] = "refuse",
    group: str = "subject",
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
        media: Modality → options of its media (:class:`~dcat.data.manifest_media.MediaSpec`:
            ``kind``, ``size``, ``frames``, ``fps``, ``color``, ``sample_rate``, ``mono``,
            ``value_range``).
        frame_cache: Folder of the decoded-frame cache; default ``.dcat_frames`` beside the
            manifest.
        duplicates: ``refuse`` two rows of one sample (the same files, and for recordings the
            same label file and offsets), naming both rows; ``keep`` them.
        group: The column of the groups an OOD split keeps apart and subject lists name:
            ``subject`` by default, or e.g. ``session`` (the report then calls the split
            session-disjoint); the ``subject`` column is then optional.

    Returns:
        A dataset with inputs ``(N, C_m, T_m)`` per series or audio modality (``T_m = steps[m]``
        for segmented samples, ``round(window_s * rate_m)`` for windows, where ``rate_m`` is the
        highest rate of that modality over the rows; audio keeps its sample rate), a
        :class:`~dcat.data.frame_store.FrameStore` ``(N, F, C, H, W)`` per video modality,
        labels indexing ``class_names``, subjects numbered from 0 in order of first appearance
        (the ``group`` column's values, in id order, are in ``subject_names``; split
        configurations name subjects by these values; ``group`` is the data set's
        :attr:`~dcat.data.paired.PairedDataset.group`), and recordings from the ``recording``
        column (default the row number), with ``_wK`` appended for the K-th window of a stream
        (from 0).

    Raises:
        DcatError: Any problem with the manifest or its files, naming the manifest, the row
            (1-based, counting data rows after the header) and the column at fault.
    """
    options = _Options(
        classes, steps, window_s, stride_s, max_gap_s, min_class_samples, allow_absolute
    )
    ctx = _Context(Path(path))
    manifest = _checked_manifest(ctx, group, media, allow_absolute, duplicates)
    cache = Path(frame_cache) if frame_cache is not None else ctx.folder / _DEFAULT_FRAME_CACHE
    load = _load_segmented if manifest.segmented else _load_streams
    return _dataset(ctx, manifest, load(ctx, manifest, options, cache), name, group)


def _checked_manifest(
    ctx: _Context,
    group: str,
    media: Mapping[str, Mapping[str, Any]] | None,
    allow_absolute: bool,
    duplicates: Literal["refuse", "keep"],
) -> _Manifest:
    """Read the manifest and check everything its rows say before any data file is read:
    its columns, groups, media options, each file's kind and (unless kept) duplicate rows.

    Raises:
        DcatError: The first problem found, naming the manifest, row and column.
    """
    header, rows = _read_manifest(ctx)
    _check_group(ctx, header, group)
    segmented = _is_segmented(ctx, header)
    modalities = _find_modalities(ctx, header, rows, (*_RESERVED, group))
    _check_filled(ctx, rows, modalities)
    subject_ids, subject_names = _subject_ids(ctx, rows, group)
    specs = manifest_media.media_specs(media)
    kinds, files = _kinds(ctx, rows, modalities, specs, allow_absolute)
    if duplicates == "refuse":
        _refuse_duplicates(ctx, rows, modalities, files, allow_absolute)
    return _Manifest(rows, modalities, segmented, subject_ids, subject_names, specs, kinds, files)


def _is_segmented(ctx: _Context, header: list[str]) -> bool:
    """Whether the manifest lists segmented samples (``label``) rather than continuous
    recordings (``label_file``); it must have exactly one of the two columns."""
    has_label, has_file = "label" in header, "label_file" in header
    if has_label == has_file:
        others = [c for c in header if c not in _RESERVED and not c.endswith("_hz")]
        hint = "" if has_label else did_you_mean(others, ["label", "label_file"])
        raise ctx.error(
            "needs exactly one of the columns 'label' (segmented samples) and 'label_file' "
            f"(continuous recordings), found {'both' if has_label else 'neither'}{hint}"
        )
    return has_label


def _check_filled(ctx: _Context, rows: list[_Row], modalities: list[str]) -> None:
    """Every row needs a file for every modality."""
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


def _dataset(
    ctx: _Context, manifest: _Manifest, loaded: _Loaded, name: str | None, group: str
) -> PairedDataset:
    """The data set, named ``name`` or by default after the manifest (its folder's name for
    a ``manifest.csv``)."""
    if name is None:
        stem = ctx.manifest.stem
        name = ctx.manifest.parent.resolve().name if stem == "manifest" else stem
    return assemble(
        loaded.recordings, loaded.class_names, name=name, streams=loaded.streams,
        subject_names=dict(enumerate(manifest.subject_names)), group=group, stored=loaded.stored,
        order=manifest.modalities,
    )  # fmt: skip
