"""One registry idiom: encoders, methods and data sets, listed, looked up and extended alike.

A plug-in package (``tests/fixtures/plugin``: a module plus a ``.dist-info`` with its entry
points, as ``pip install`` would leave it) adds a transfer method that reads the source's raw
samples; it runs end to end through ``dcat experiment`` with no edit to dcat.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from dcat.data.registry import DATASETS
from dcat.errors import DcatError
from dcat.nn.encoders import create_encoder
from dcat.nn.encoders.registry import ENCODERS
from dcat.nn.model import ModalityNet
from dcat.registry import Registry
from dcat.training.methods import METHODS, TransferMethod, get_method
from dcat.training.tasks import SourceSpec, TransferTask
from test_experiment import TINY

PLUGIN = Path(__file__).parent / "fixtures" / "plugin"
RUN = "runs/ood/seed0/imu/source_statistics_from-skeleton_w1"


def _dcat(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``dcat ARGS`` in a fresh interpreter that has the plug-in package installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "dcat.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_plug_in_method_runs_end_to_end_through_dcat_experiment(tmp_path: Path) -> None:
    config = {
        **TINY,
        "name": "plugin",
        "methods": ["source_statistics"],
        "lambdas": [],
        "train": {"max_epochs": 2, "batch_size": 32, "progress": False},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = _dcat("experiment", "config.yaml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    records = json.loads((out / "results.json").read_text())
    plugged = [r for r in records if r["method"] == "source_statistics"]
    assert len(plugged) == 1 and plugged[0]["source"] == "skeleton"
    assert 0.0 <= plugged[0]["f1"] <= 1.0 and plugged[0]["run"] == RUN
    # its loss was trained and logged under the method's own component name
    with open(out / RUN / "logs" / "metrics.csv") as table:
        rows = list(csv.DictReader(table))
    logged = [float(r["train/stats"]) for r in rows if r.get("train/stats")]
    assert logged and all(value > 0 for value in logged)
    assert any(r.get("train/stats_mean/skeleton") for r in rows)
    # it reads samples, not a network: no skeleton model was trained for it
    assert not (out / "runs/ood/seed0/skeleton/baseline").exists()
    assert "Source statistics" in (out / "report.md").read_text()


def test_the_listings_show_plug_ins_and_every_registered_entry(tmp_path: Path) -> None:
    methods = _dcat("methods", cwd=tmp_path)
    assert methods.returncode == 0, methods.stderr
    lines = methods.stdout.splitlines()
    assert "source_statistics: Source statistics (dcat's plug-in example)" in lines
    assert "    scale: float = 1.0" in lines
    named = [line.split(":")[0] for line in lines if not line.startswith(" ")]
    assert named == [*METHODS.names(), "source_statistics"]  # shipped first, in report order
    encoders = _dcat("encoders", cwd=tmp_path)
    named = [line.split(":")[0] for line in encoders.stdout.splitlines() if line[:1] != " "]
    assert encoders.returncode == 0 and named == ENCODERS.names() == sorted(named)
    assert "    widths: Sequence[int] = (64, 128, 128)" in encoders.stdout.splitlines()


def test_a_method_declares_what_it_reads_and_the_task_serves_only_that() -> None:
    sys.path.insert(0, str(PLUGIN))
    try:
        from dcat_example_plugin.source_statistics import SourceStatistics
    finally:
        sys.path.remove(str(PLUGIN))
    try:
        torch.manual_seed(0)
        target = ModalityNet(create_encoder("imu", 6, widths=[8, 8, 8]), 8, 3, attention="side")
        task = TransferTask(target, "imu", [SourceSpec("s", None, "seq", "source_statistics")])
        batch = {
            "inputs": {"imu": torch.randn(4, 6, 16), "seq": torch.randn(4, 5, 12)},
            "label": torch.tensor([0, 1, 2, 0]),
            "index": torch.arange(4),
        }
        assert task.required_modalities() == ["imu", "seq"]
        out = task(batch)  # the method asserts that it got samples and nothing else
        assert set(out) == {"loss", "logits", "ce", "stats", "stats/s", "stats_mean/s"}
        flat = batch["inputs"]["seq"].flatten(1)
        wanted = torch.stack([flat.mean(1), flat.std(1)], dim=1).mean()
        torch.testing.assert_close(out["stats_mean/s"], wanted)
        assert SourceStatistics.source_network is False
        assert get_method("dcat").inputs == {"outputs"} and get_method("dcat").source_network
    finally:
        sys.modules.pop("dcat_example_plugin.source_statistics", None)
        METHODS._entries.pop("source_statistics", None)


def test_a_method_that_declares_an_unknown_input_is_refused() -> None:
    with pytest.raises(TypeError, match=r"inputs must name some of \['outputs', 'samples', "):
        type("Odd", (TransferMethod,), {"inputs": frozenset({"features"})})


def _registry(group: str = "dcat.test_nothing") -> Registry[str]:
    return Registry("widget", group, unknown="{where}: unknown widget {name}; choose from {names}")


def test_a_registry_looks_up_lists_and_suggests() -> None:
    widgets = _registry()
    widgets.add("spanner", "S")
    widgets.add("hammer", "H")
    assert widgets.names() == ["spanner", "hammer"] and widgets.get("hammer") == "H"
    assert "spanner" in widgets and "saw" not in widgets
    with pytest.raises(
        DcatError,
        match=r"^tools: unknown widget 'spaner'; choose from spanner, hammer; did you "
        r"mean 'spanner'\?$",
    ):
        widgets.get("spaner", "tools")
    with pytest.raises(DcatError, match="a widget named 'hammer' is already registered"):
        widgets.add("hammer", "H2")
    widgets.add("hammer", "H", same=lambda old, new: old == new)  # the same one again: kept
    with widgets.scoped():
        widgets.add("saw", "W")
        assert widgets.names() == ["spanner", "hammer", "saw"]
    assert widgets.names() == ["spanner", "hammer"]


def test_a_registry_loads_plug_ins_from_its_entry_point_group(tmp_path, monkeypatch) -> None:
    info = tmp_path / "widgets-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: widgets\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dcat.test_widgets]\nsaw = test_widget_saw\n")
    (tmp_path / "test_widget_saw.py").write_text(
        "from test_plugins import WIDGETS\nWIDGETS.add('saw', 'W')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert WIDGETS.names() == ["saw"] and WIDGETS.get("saw") == "W"
    (info / "entry_points.txt").write_text("[dcat.test_broken]\nbroken = no_such_module\n")
    broken = _registry("dcat.test_broken")
    with pytest.raises(DcatError, match=r"plug-in 'broken' of entry-point group "
                       r"'dcat.test_broken': cannot import 'no_such_module'"):  # fmt: skip
        broken.names()


WIDGETS: Registry[str] = _registry("dcat.test_widgets")


def test_the_three_kinds_share_the_idiom() -> None:
    for registry, group in ((ENCODERS, "dcat.encoders"), (METHODS, "dcat.methods"),
                            (DATASETS, "dcat.datasets")):  # fmt: skip
        assert isinstance(registry, Registry) and registry.group == group
    with pytest.raises(DcatError, match=r"unknown encoder 'imuu'.*did you mean 'imu'\?"):
        create_encoder("imuu", 6)
    with pytest.raises(DcatError, match=r"method must be one of .*got 'dckat'; did you mean"):
        get_method("dckat")
    with pytest.raises(DcatError, match=r"unknown data set 'utd_mhad_embeded'.*did you mean"):
        DATASETS.get("utd_mhad_embeded", "data.dataset")
