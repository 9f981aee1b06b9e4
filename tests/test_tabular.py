"""Numbers from CSV cells: the shared parser and the errors the readers raise through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcat.data.sp_sw_har import read_execution
from dcat.io.table import first_bad_cell, parse_numbers


def test_parse_numbers_values_and_first_bad_cell() -> None:
    rows = [["1", " 2.5"], ["-3e2", "4"]]
    np.testing.assert_array_equal(
        parse_numbers(Path("f.csv"), rows, ["a", "b"]), [[1.0, 2.5], [-300.0, 4.0]]
    )
    assert first_bad_cell(rows, ["a", "b"]) is None
    bad = [["1", "2"], ["3", "x"], ["y", "4"]]
    assert first_bad_cell(bad, ["a", "b"]) == (2, "b", "x")  # first row with a bad cell
    with pytest.raises(ValueError, match=r"^f\.csv: row 2, column 'b': 'x' is not a number!$"):
        parse_numbers(Path("f.csv"), bad, ["a", "b"], note="!")
    with pytest.raises(ValueError, match=r"row 1, column 2: '' is not a number"):
        parse_numbers(Path("g.csv"), [["1", ""]], range(1, 3))


def test_reader_names_the_bad_cell(tmp_path) -> None:
    header = "x_acc,y_acc,z_acc,x_gyro,y_gyro,z_gyro,timestamp,label"
    path = tmp_path / "s01_01_sp.csv"
    path.write_text(f"{header}\n1,2,3,4,5,6,1000,WALKING\n1,2,oops,4,5,6,1010,WALKING\n")
    with pytest.raises(ValueError, match=r"s01_01_sp\.csv: row 2, column 'z_acc': 'oops' is not"):
        read_execution(path)
