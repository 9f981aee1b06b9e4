"""The README stays true: its Python example runs, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_readme_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks, "the README has no Python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    loss = namespace["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert namespace["target"].attention.key.weight.grad is not None
    assert all(p.grad is None for p in namespace["source"].parameters())


def test_readme_quick_start_matches_makefile_and_ci() -> None:
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert "make demo" in README and "make test" in README
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in ci


def test_the_encoder_table_lists_every_registered_encoder() -> None:
    from dcat.nn.encoders import list_encoders

    table = README.split("| name | input → output | what it is |")[1].split("\n\n")[0]
    named = {row.split("`")[1] for row in table.splitlines() if row.startswith("| `")}
    assert named == set(list_encoders())


def test_the_readme_shows_no_legacy_source_spec_shorthand() -> None:
    # SourceSpec(mcma=True) still works but is legacy: the README shows the options mapping
    assert "mcma=True" not in README


def test_the_licence_is_a_pep_639_expression() -> None:
    """A ``license = {text = ...}`` table made setuptools print its deprecation block twice on
    every install; the SPDX string installs quietly and lands in the metadata as an expression."""
    import importlib.metadata

    metadata = importlib.metadata.metadata("dcat")
    assert metadata.get("License-Expression") == "MIT" and metadata.get("License") is None
