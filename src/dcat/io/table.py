"""Numbers from CSV cells, with errors that point at the file, row and column at fault."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dcat.errors import DcatError

__all__ = ["first_bad_cell", "is_number", "parse_numbers"]


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
    path: Path, rows: Sequence[Sequence[str]], names: Sequence[object], *, note: str = ""
) -> np.ndarray:
    """``(N, K)`` float64 from ``N`` rows of ``K`` cells named ``names``.

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
        raise DcatError(
            f"{path}: row {row}, column {name!r}: {cell!r} is not a number{note}"
        ) from None
