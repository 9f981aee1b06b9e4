"""Reading CSV and ``.npy`` tables, with errors that point at the file, row and column at fault.

Every CSV reader of dcat, in training (the manifest and the readers of the paper's data sets) and
in deployment (``dcat predict``), goes through :func:`read_rows`: one rule for blank rows, field
counts, header rows and row numbers. Numeric tables then go through :meth:`CsvRows.numeric` (or
:func:`read_table`, which also reads ``.npy`` arrays), and NaN/Inf through :func:`non_finite`.

Row numbers in messages are csv records counted from 1, blank rows included, so they match what
a user sees in an editor (for files without quoted line breaks, the file's line numbers, less
the header line when ``numbering="data"``). Readers whose messages always counted only the
non-blank rows keep that with ``count_skipped=False``. A :class:`TableError` says what is wrong
(``kind``) and where (``row``, ``column``), so a reader can word its message its own way.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from dcat.errors import DcatError

__all__ = [
    "CsvRows",
    "Table",
    "TableError",
    "check_finite",
    "first_bad_cell",
    "is_number",
    "load_npy",
    "non_finite",
    "npy_header",
    "parse_numbers",
    "read_npy",
    "read_rows",
    "read_table",
]

Numbering = Literal["data", "line"]


class TableError(DcatError):
    """Bad input found while reading a table; the message names the file (and row).

    Attributes:
        kind: What is wrong, for readers that word it their own way: ``"read"`` (an unreadable
            file; the cause is chained), ``"empty"``, ``"no_rows"``, ``"missing"`` (a missing
            column), ``"fields"`` (a wrong field count), ``"number"`` (a cell that is not a
            number), ``"finite"`` (NaN or Inf), or ``""`` (anything else).
        row: The row at fault, as numbered in the message (``None`` for the whole file).
        detail: The message without the file and row, for readers that name the place their own
            way (e.g. the manifest names its own row and column first).
        cells: The cells of the row at fault, for a wrong field count.
        expected: The expected field count, for a wrong field count.
        column: The column at fault (its name in messages), for a bad cell or NaN/Inf.
        value: The text of the cell that is not a number.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        row: int | None = None,
        detail: str = "",
        cells: Sequence[str] = (),
        expected: int | None = None,
        column: object = None,
        value: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind, self.row, self.detail, self.cells = kind, row, detail or message, list(cells)
        self.expected, self.column, self.value = expected, column, value


def is_number(text: str) -> bool:
    """Whether a CSV cell parses as a float (header rows are told from data rows by this)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def first_bad_cell(
    rows: Sequence[Sequence[str]], names: Sequence[object]
) -> tuple[int, object, str] | None:
    """The first cell that is not a number: ``(row, column name, text)``, rows from 1."""
    for number, cells in enumerate(rows, start=1):
        for name, cell in zip(names, cells, strict=True):
            try:
                float(cell)
            except ValueError:
                return number, name, cell
    return None


def parse_numbers(
    path: Path,
    rows: Sequence[Sequence[str]],
    names: Sequence[object],
    *,
    note: str = "",
    numbers: Sequence[int] | None = None,
) -> np.ndarray:
    """``(N, K)`` float64 from ``N`` rows of ``K`` cells named ``names``.

    Args:
        path: The file, for messages.
        rows: ``N`` rows of ``K`` cells.
        names: The ``K`` column names shown in messages.
        note: Appended to the message (e.g. a hint on the file format).
        numbers: Row number of each row in messages; default ``1 .. N``.

    Raises:
        DcatError: ``"<path>: row R, column NAME: 'text' is not a number<note>"`` for the first
            bad cell (the fast path converts everything at once; only a failure scans).
    """
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    except ValueError:
        bad = first_bad_cell(rows, names)
        if bad is None:
            raise
        row, name, cell = bad
        if numbers is not None:
            row = numbers[row - 1]
        raise TableError(
            f"{path}: row {row}, column {name!r}: {cell!r} is not a number{note}",
            kind="number",
            row=row,
            column=name,
            value=cell,
        ) from None


def non_finite(values: np.ndarray) -> tuple[tuple[int, ...], int] | None:
    """Where the first NaN or Inf of ``values`` is (C order) and how many there are.

    Args:
        values: Any numeric array, e.g. ``(N, K)``.

    Returns:
        ``(index, count)``, or ``None`` when every value is finite.
    """
    finite = np.isfinite(values)
    if finite.all():
        return None
    bad = np.argwhere(~finite)
    return tuple(int(i) for i in bad[0]), len(bad)


def check_finite(
    path: Path,
    values: np.ndarray,
    *,
    rows: Sequence[int] | None = None,
    names: Sequence[object] | None = None,
) -> None:
    """Refuse NaN and Inf in a ``(N, K)`` table.

    Args:
        path: The file, for the message.
        values: ``(N, K)`` numbers.
        rows: Row number of each of the ``N`` rows in messages; default ``1 .. N``.
        names: The ``K`` column names; default ``1 .. K``.

    Raises:
        DcatError: ``"<path>: row R, column NAME is not finite"`` for the first one.
    """
    found = non_finite(values)
    if found is None:
        return
    (row, column), _count = found
    number = rows[row] if rows is not None else row + 1
    name = names[column] if names is not None else column + 1
    raise TableError(
        f"{path}: row {number}, column {name!r} is not finite",
        kind="finite",
        row=number,
        column=name,
    )


def _check_columns(path: Path, header: Sequence[str], columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise TableError(
            f"{path}: missing column(s) {missing} (header is {list(header)})", kind="missing"
        )


@dataclass(frozen=True)
class CsvRows:
    """The data rows of a CSV file, blank rows dropped, each with the expected field count.

    Attributes:
        path: The file.
        header: Column names (as given by ``header_key``), or ``None`` without a header row.
        cells: ``N`` rows of ``K`` cells, as in the file (not stripped).
        row_numbers: ``(N,)`` row number of each row, as shown in messages.
        lines: The file's line of each row, for numpy's C parser; ``None`` when a quoted cell
            spans lines (rows and lines do not match up then).
    """

    path: Path
    header: list[str] | None
    cells: list[list[str]]
    row_numbers: list[int]
    lines: list[str] | None

    def __len__(self) -> int:
        return len(self.cells)

    def require(self, columns: Sequence[str]) -> list[int]:
        """Index of each named column.

        Raises:
            DcatError: ``"<path>: missing column(s) [...] (header is [...])"``.
        """
        header = self.header or []
        _check_columns(self.path, header, columns)
        return [header.index(c) for c in columns]

    def text(self, column: str | int) -> list[str]:
        """The stripped cells of one column (a name, or an index without a header)."""
        index = column if isinstance(column, int) else self.require([column])[0]
        return [cells[index].strip() for cells in self.cells]

    def numeric(
        self,
        columns: Sequence[str] | None = None,
        *,
        names: Sequence[object] | None = None,
        note: str = "",
        finite: bool = True,
        strip: bool = False,
    ) -> np.ndarray:
        """Numbers of some (default: all) columns: ``(N, K)`` float64.

        Args:
            columns: Column names to convert, in this order; default all columns.
            names: Names of the columns in messages; default the header's, or ``1 .. K``
                without one.
            note: Appended to a bad-cell message.
            finite: Also refuse NaN and Inf (:func:`check_finite`).
            strip: Show a bad cell without its surrounding spaces in the message (the number
                read is the same either way).

        Raises:
            DcatError: A missing column, a cell that is not a number (file, row and column
                named), or with ``finite`` a NaN or Inf.
        """
        width = len(self.cells[0]) if self.cells else 0
        index = self.require(columns) if columns is not None else list(range(width))
        if names is None:
            names = list(columns) if columns is not None else (self.header or range(1, width + 1))
        names = list(names)
        if not self.cells:
            return np.zeros((0, len(index)), dtype=np.float64)
        values = None
        if self.lines is not None:
            try:
                # numpy's C parser: several times faster than converting the csv module's strings
                values = np.loadtxt(
                    self.lines,
                    delimiter=",",
                    quotechar='"',
                    comments=None,
                    usecols=index,
                    dtype=np.float64,
                    ndmin=2,
                )
            except ValueError:
                values = None  # parse_numbers names the bad cell (or accepts what float() does)
        if values is None:
            table = [[cells[i] for i in index] for cells in self.cells]
            if strip:
                table = [[cell.strip() for cell in cells] for cells in table]
            values = parse_numbers(self.path, table, names, note=note, numbers=self.row_numbers)
        values = values.reshape(len(self.cells), len(index))
        if finite:
            check_finite(self.path, values, rows=self.row_numbers, names=names)
        return values


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig: spreadsheet programs often prepend a byte-order mark.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as err:
        raise TableError(f"{path}: cannot read as a UTF-8 CSV file ({err})", kind="read") from err


def _csv_records(path: Path, lines: list[str]) -> list[list[str]]:
    """The csv records of a file's ``lines`` (one per line unless a quoted cell spans lines).

    Raises:
        DcatError (:class:`TableError`, kind ``"read"``): Text the csv module cannot parse.
    """
    try:
        return list(csv.reader(lines))
    except csv.Error as err:
        raise TableError(f"{path}: cannot read as a UTF-8 CSV file ({err})", kind="read") from err


def _kept_records(records: Sequence[Sequence[str]], comment: str | None) -> list[int]:
    """Indices of the records that are neither blank (all whitespace) nor comments."""
    return [
        i
        for i, cells in enumerate(records)
        if any(c.strip() for c in cells)
        and not (comment is not None and cells[0].lstrip().startswith(comment))
    ]


def _split_header(
    path: Path,
    records: Sequence[Sequence[str]],
    kept: list[int],
    *,
    header: bool | None,
    header_key: Callable[[str], str],
    require: Sequence[str],
    no_rows: str | None,
) -> tuple[list[str] | None, int, list[int]]:
    """Take the header row (if any) off the kept records and check the required columns.

    Args:
        path: The file, for messages.
        records: All csv records of the file.
        kept: Indices of the non-blank, non-comment records; not empty.
        header: As in :func:`read_rows` (``None``: a row without numbers is a header).
        header_key: Turns a header cell into a column name.
        require: Columns the header must name.
        no_rows: Message for a header without data rows; ``None`` accepts one.

    Returns:
        The column names (``None`` without a header), the header's record index (``-1``
        without one) and the indices of the data records.

    Raises:
        DcatError (:class:`TableError`): A missing required column, or a header without data
            rows.
    """
    if header is True or (header is None and not any(is_number(c) for c in records[kept[0]])):
        names = [header_key(c) for c in records[kept[0]]]
        first, data = kept[0], kept[1:]
        _check_columns(path, names, require)
        if not data and no_rows is not None:
            raise TableError(f"{path}: {no_rows}", kind="no_rows")
        return names, first, data
    if require:
        _check_columns(path, [], require)
    return None, -1, kept


def _row_numbers(
    kept: Sequence[int], first: int, *, numbering: Numbering, count_skipped: bool
) -> list[int]:
    """Row number shown in messages for each data record (see :func:`read_rows`).

    Args:
        kept: ``(N,)`` record indices of the data rows.
        first: Record index of the header row, ``-1`` without one.
        numbering: ``"data"`` or ``"line"``, as in :func:`read_rows`.
        count_skipped: Whether blank and comment rows count.

    Returns:
        ``N`` row numbers.
    """
    if count_skipped:
        offset = first + 1 if numbering == "data" else 0  # first is -1 without a header
        return [i + 1 - offset for i in kept]
    offset = 1 if first >= 0 and numbering == "line" else 0
    return list(range(1 + offset, len(kept) + 1 + offset))


def _check_field_counts(
    path: Path,
    records: Sequence[Sequence[str]],
    kept: Sequence[int],
    numbers: Sequence[int],
    width: int,
    *,
    has_header: bool,
    ragged: str,
    hint: str,
) -> None:
    """Refuse the first data record whose field count is not ``width``.

    Raises:
        DcatError (:class:`TableError`, kind ``"fields"``): ``"<path>: row R <detail>"``, the
            detail worded by ``ragged`` with a header, else ``"has N fields, expected K<hint>"``.
    """
    for i, number in zip(kept, numbers, strict=True):
        if len(records[i]) != width:
            if has_header:
                detail = ragged.format(count=len(records[i]), width=width)
            else:
                detail = f"has {len(records[i])} fields, expected {width}{hint}"
            raise TableError(
                f"{path}: row {number} {detail}",
                kind="fields",
                row=number,
                detail=detail,
                cells=records[i],
                expected=width,
            )


def read_rows(
    path: str | Path,
    *,
    header: bool | None = None,
    header_key: Callable[[str], str] = str.strip,
    fields: int | None = None,
    hint: str = "",
    comment: str | None = None,
    numbering: Numbering = "data",
    count_skipped: bool = True,
    require: Sequence[str] = (),
    ragged: str = "has {count} fields but the header has {width}",
    empty: str = "empty file",
    no_rows: str | None = "no data rows after the header",
) -> CsvRows:
    """Read the rows of a CSV file: blank rows skipped, field counts checked, rows numbered.

    A row is blank when all its cells are whitespace. The header (if any) is the first
    non-blank row; every data row must have as many fields as it (or as ``fields``, or without
    either as the first data row).

    Args:
        path: The CSV file (UTF-8, a byte-order mark is ignored).
        header: ``True``: the first row names the columns; ``False``: no header; ``None``: the
            first row is a header when none of its cells is a number (a mixed row is data with a
            bad cell).
        header_key: Turns a header cell into a column name (default: strip spaces).
        fields: Field count of a file without a header; default that of the first data row.
        hint: Appended to a wrong-field-count message of a file without a header.
        comment: Rows whose first cell starts with this (after spaces) are skipped.
        numbering: ``"data"``: rows from 1 at the row after the header; ``"line"``: from 1 at
            the file's first row (the header, when there is one).
        count_skipped: Count blank and comment rows in row numbers (``False``: number the rows
            that are kept, as readers that count only non-blank rows do).
        require: Columns the header must name (checked before the data rows:
            ``"<path>: missing column(s) [...] (header is [...])"``).
        ragged: How a row with another field count than the header is described, after
            ``"<path>: row R "`` (``{count}``: its fields, ``{width}``: the header's).
        empty: Message (after ``"<path>: "``) for a file without a non-blank row.
        no_rows: Message (after ``"<path>: "``) for a header without data rows; ``None``
            accepts a header without data rows.

    Returns:
        :class:`CsvRows`.

    Raises:
        DcatError (:class:`TableError`): An unreadable file, an empty file, a missing required
            column, a header without data rows, or a row with another field count (file and row
            named:
            ``"<path>: row R has N fields but the header has K"`` or ``"... , expected K<hint>"``).
    """
    path = Path(path)
    lines = _read_text(path).splitlines()
    records = _csv_records(path, lines)
    kept = _kept_records(records, comment)
    if not kept:
        raise TableError(f"{path}: {empty}", kind="empty")
    names, first, kept = _split_header(
        path, records, kept, header=header, header_key=header_key, require=require, no_rows=no_rows
    )
    numbers = _row_numbers(kept, first, numbering=numbering, count_skipped=count_skipped)
    width = len(names) if names is not None else fields or len(records[kept[0]])
    _check_field_counts(
        path, records, kept, numbers, width, has_header=names is not None, ragged=ragged, hint=hint
    )
    return CsvRows(
        path,
        names,
        [records[i] for i in kept],
        numbers,
        # Rows map one-to-one onto lines only when no quoted cell spans lines.
        [lines[i] for i in kept] if len(records) == len(lines) else None,
    )


def load_npy(path: str | Path) -> np.ndarray | np.lib.npyio.NpzFile:
    """What ``numpy.load`` reads from ``path``, without ever unpickling.

    Returns:
        The array as stored (any shape and dtype), or an ``NpzFile`` for a ``.npz`` archive.

    Raises:
        DcatError (:class:`TableError`, kind ``"read"``): ``"<path>: cannot read as a .npy file
            (<reason>)"``; its ``detail`` is the reason (``"no NPY header"`` for a file that
            numpy would unpickle).
    """
    path = Path(path)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises several types for corrupt or truncated files
        reason = "no NPY header" if "pickled" in str(err) else str(err)
        raise TableError(
            f"{path}: cannot read as a .npy file ({reason})", kind="read", detail=reason
        ) from err


def npy_header(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file from its header alone, checked against the file's size.

    Nothing but the header is read, so a large array costs nothing; a file cut short while
    copying is caught here, where ``np.load(mmap_mode="r")`` would only say "mmap length".

    Returns:
        The shape as stored and the dtype.

    Raises:
        DcatError (:class:`TableError`, kind ``"read"``): ``"<path>: cannot read as a .npy file
            (<reason>)"``: an empty file, no NPY header (not NumPy's format), a header cut
            short, or fewer data bytes than the header promises (``"truncated? ..."``).
    """
    path = Path(path)
    fmt = np.lib.format
    try:
        with open(path, "rb") as handle:
            if not handle.read(1):
                raise EOFError("empty file (0 bytes)")
            handle.seek(0)
            try:
                version = fmt.read_magic(handle)
            except ValueError:
                raise EOFError("no NPY header: not a file written by numpy.save") from None
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            try:
                shape, _fortran, dtype = read(handle)
            except (ValueError, EOFError) as err:
                raise EOFError(f"truncated? its header is cut short: {err}") from None
            start = handle.tell()
    except (OSError, EOFError) as err:
        raise TableError(
            f"{path}: cannot read as a .npy file ({err})", kind="read", detail=str(err)
        ) from err
    held = path.stat().st_size - start
    promised = int(np.prod(shape)) * dtype.itemsize
    if not dtype.hasobject and held < promised:
        reason = (
            f"truncated? its header promises {dtype} {tuple(shape)}, {promised} bytes of data, "
            f"the file holds {held}"
        )
        raise TableError(
            f"{path}: cannot read as a .npy file ({reason})", kind="read", detail=reason
        )
    return tuple(shape), dtype


def read_npy(path: str | Path) -> np.ndarray:
    """A ``.npy`` array of numbers as a ``(T, C)`` table (a ``(T,)`` array is one column).

    Returns:
        ``(T, C)`` float64.

    Raises:
        DcatError (:class:`TableError`): ``"<path>: cannot read as a .npy file (<reason>)"``
            (its ``detail`` is the reason; a file without an NPY header is refused rather than
            unpickled), ``"wrong dtype ..."`` for anything but integers and floats, ``"expected
            shape (T, C) or (T,), got ..."``, or ``"empty array of shape ..."``.
    """
    path = Path(path)
    array = load_npy(path)
    if not isinstance(array, np.ndarray) or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise TableError(f"{path}: wrong dtype {kind} (expected integer or float numbers)")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise TableError(f"{path}: expected shape (T, C) or (T,), got {array.shape}")
    if array.size == 0:
        raise TableError(f"{path}: empty array of shape {array.shape}")
    return array.astype(np.float64)


@dataclass(frozen=True)
class Table:
    """A numeric table.

    Attributes:
        header: Column names, or ``None`` (no header row, or a ``.npy`` file).
        data: ``(N, K)`` float64.
        rows: ``(N,)`` row number of each row in messages (CSV), or ``None`` (``.npy``: row
            ``i`` is step ``i``).
    """

    header: list[str] | None
    data: np.ndarray
    rows: list[int] | None


def read_table(
    path: str | Path,
    *,
    header: bool | None = None,
    columns: Sequence[str] | None = None,
    numbering: Numbering = "data",
    finite: bool = True,
    note: str = "",
    empty: str = "empty file",
    no_rows: str = "no data rows after the header",
) -> Table:
    """Read a numeric CSV (all or the named columns) or a ``.npy`` array.

    Args:
        path: ``.npy`` (read by :func:`read_npy`), else a CSV read by :func:`read_rows`.
        header: For CSVs, as in :func:`read_rows` (``None``: detect).
        columns: For CSVs, the columns to return, in this order; default all.
        numbering: For CSVs, as in :func:`read_rows`.
        finite: Refuse NaN and Inf (file, row and column named).
        note: Appended to a bad-cell message.
        empty: As in :func:`read_rows`.
        no_rows: As in :func:`read_rows`.

    Returns:
        :class:`Table` with ``data`` ``(N, K)`` float64.

    Raises:
        DcatError (:class:`TableError`): Any problem of the file, naming it, the row and the
            column.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        data = read_npy(path)
        if finite:
            check_finite(path, data)
        return Table(None, data, None)
    rows = read_rows(path, header=header, numbering=numbering, empty=empty, no_rows=no_rows)
    data = rows.numeric(columns, note=note, finite=finite)
    names = list(columns) if columns is not None else rows.header
    return Table(names, data, rows.row_numbers)
