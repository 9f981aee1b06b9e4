"""The import-linter contracts (pyproject.toml) hold, and they do fail when a layer is broken.

Each case copies the package, adds one forbidden import and runs ``lint-imports`` on the copy:
the contract that guards that line must then be reported broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def _lint(src: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), str(tmp_path / "pyproject.toml"), "--no-cache"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip


def test_the_contracts_hold_for_the_package(tmp_path: Path) -> None:
    done = _lint(ROOT / "src", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 5 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("nn/attention.py", "import lightning", "dcat.nn is torch only: no training framework"),
        ("deploy/predict.py", "import torch",
         "dcat.deploy.predict runs on numpy and onnxruntime: no torch"),
        ("io/table.py", "import torch", "dcat.io is numpy only: no torch"),
        ("training/config.py", "import dcat.training.engine",
         "Reading a configuration imports no training framework"),
        ("data/paired.py", "import dcat.experiment.report", "Layers import downward only"),
    ],
)  # fmt: skip
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "dcat", src / "dcat", ignore=shutil.ignore_patterns("__pycache__")
    )
    path = src / "dcat" / module
    text = path.read_text()
    # after the module docstring and `from __future__` line, so the file stays valid Python
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + "  # noqa\n" + rest)
    done = _lint(src, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{broken} BROKEN" in done.stdout
    assert " 0 broken" not in done.stdout
