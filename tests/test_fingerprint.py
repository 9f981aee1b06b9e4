"""Runs that cannot lie: a rerun reuses a model only when what made it is unchanged.

One tiny experiment (imu and skeleton baselines, skeleton → imu D-CAT) is trained once; each
test reruns a copy of its folder with a changed setting.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from dcat.errors import DcatError
from dcat.experiment.config import load_config
from dcat.experiment.runner import run_experiment
from test_experiment import TINY as EXPERIMENT_TINY

TINY = {
    **EXPERIMENT_TINY,
    "name": "tiny_fingerprint",
    "methods": ["dcat", "logit_kd"],
    "lambdas": [],
    "train": {"max_epochs": 1, "batch_size": 32, "progress": False},
}
BASELINE_IMU = "runs/ood/seed0/imu/baseline"
BASELINE_SKELETON = "runs/ood/seed0/skeleton/baseline"
DCAT = "runs/ood/seed0/imu/dcat_from-skeleton_w1"
LOGIT_KD = "runs/ood/seed0/imu/logit_kd_from-skeleton_w1"
PLAIN = "runs/ood/seed0/imu/plain"  # the plain reference: no attention, no transfer
ALL_RUNS = {BASELINE_IMU, BASELINE_SKELETON, PLAIN, DCAT, LOGIT_KD}


def _config_file(folder: Path) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _run(config: Path, out: Path, overrides: list[str] = (), **kwargs) -> list[str]:
    lines: list[str] = []
    run_experiment(load_config(config, list(overrides)), out, log=lines.append, **kwargs)
    return lines


def _trained(lines: list[str]) -> list[str]:
    """The models a run trained (not reused), as ``target: what`` from its progress lines."""
    return [
        line.split("] ", 1)[1].split(" f1=")[0]
        for line in lines
        if line.startswith("[") and "(done before)" not in line
    ]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("fingerprint")
    config = _config_file(folder)
    lines = _run(config, folder / "out")
    (folder / "log.txt").write_text("\n".join(lines))
    return config, folder / "out"


@pytest.fixture
def copy(finished, tmp_path: Path) -> tuple[Path, Path]:
    config, out = finished
    shutil.copytree(out, tmp_path / "out")
    return config, tmp_path / "out"


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_every_run_records_what_made_it(finished) -> None:
    _, out = finished
    baseline = json.loads((out / BASELINE_IMU / "fingerprint.json").read_text())
    assert set(baseline) == {"data", "split", "network", "train", "method"}
    assert baseline["data"]["dataset"] == "utd_mhad_embedded"
    assert baseline["data"]["options"]["steps"] == {"imu": 32, "skeleton": 16}
    assert baseline["network"] == {
        "encoder": "imu", "options": {"widths": [8, 16, 16]}, "dropout": 0.5, "d_out": 16,
        "attention": "serial", "aux_head": False,
    }  # fmt: skip
    assert baseline["train"]["max_epochs"] == 1 and baseline["split"]["seed"] == 0
    assert "progress" not in baseline["train"]  # how a run is shown never makes it stale
    transfer = json.loads((out / DCAT / "fingerprint.json").read_text())
    assert transfer["method"] == {
        "name": "dcat", "base": "dcat", "options": {"confidence": 0.5, "eps": 1e-8,
                                                   "loss_method": "auto", "mcma": "correct"},
        "weight": 1.0,
    }  # fmt: skip
    plain = json.loads((out / PLAIN / "fingerprint.json").read_text())
    assert plain["network"]["attention"] == "none" and plain["method"] == {"name": "plain"}
    assert "source" not in plain
    assert transfer["source"]["run"] == BASELINE_SKELETON
    assert len(transfer["source"]["digest"]) == 64


def test_class_counts_are_reported_at_load(finished) -> None:
    _, out = finished
    described = yaml.safe_load((out / "config.yaml").read_text())["data"]
    counts = described["class_counts"]
    assert list(counts) == described["classes"] and len(counts) == 27
    assert sum(counts.values()) == described["samples"]
    assert described["group"] == "subject"  # what the report's split titles name
    line = next(x for x in (out.parent / "log.txt").read_text().splitlines() if "per class" in x)
    first = described["classes"][0]
    assert line.startswith(f"samples per class: {first} {counts[first]}, ")


def test_an_unchanged_rerun_reuses_every_model(copy) -> None:
    config, out = copy
    runs = {run: (out / run / "metrics.json").read_bytes() for run in ALL_RUNS}
    lines = _run(config, out)
    assert _trained(lines) == []
    assert sum("(done before)" in line for line in lines) == 5
    assert {run: (out / run / "metrics.json").read_bytes() for run in ALL_RUNS} == runs


@pytest.mark.parametrize(
    ("override", "runs", "shown"),
    [
        ("train.max_epochs=2", ALL_RUNS, "train.max_epochs 1 → 2"),
        ("modalities.imu.train.lr=0.01", {BASELINE_IMU, PLAIN, DCAT, LOGIT_KD},
         "train.lr 0.001 → 0.01"),
        # a reader option may change any modality: every model is checked
        ("data.options.steps.imu=24", ALL_RUNS, "data.options.steps.imu 32 → 24"),
        ("data.normalization=minmax", ALL_RUNS, "data.normalization 'zscore' → 'minmax'"),
        ("modalities.skeleton.options.depth=1", {BASELINE_SKELETON, DCAT, LOGIT_KD},
         "network.options.depth 2 → 1"),
        # the top-level temperature is logit KD's; its run folder keeps its name
        ("temperature=2", {LOGIT_KD}, "method.options.temperature 4.0 → 2.0"),
        ("dropout=0.3", ALL_RUNS, "network.dropout 0.5 → 0.3"),
    ],
)  # fmt: skip
def test_a_changed_setting_is_refused_before_anything_is_written(
    copy, override: str, runs: set[str], shown: str
) -> None:
    config, out = copy
    before = _snapshot(out)
    with pytest.raises(DcatError) as caught:
        _run(config, out, [override])
    message = str(caught.value)
    assert f"{len(runs)} model(s) there were trained with other settings" in message
    assert shown in message
    assert "--retrain-changed" in message and "fresh --out" in message
    named = {run for run in ALL_RUNS if f"{run}:" in message}
    assert named == runs or len(runs) > 3  # at most three runs are spelled out
    assert _snapshot(out) == before  # the top-level config.yaml still describes the results


def test_a_new_seed_or_lambda_trains_only_the_new_models(copy) -> None:
    config, out = copy
    # seeds and λ name their own run folders: no model made with other values is ever reused
    trained = _trained(_run(config, out, ["seeds=[0, 1]", "lambdas=[0.5]"]))
    assert len(trained) == 7  # seed 1's six models and seed 0's λ = 0.5 D-CAT
    assert sum("seed=1" in line for line in trained) == 6
    assert any("seed=0" in line and "λ=0.5" in line for line in trained)


def test_retrain_changed_retrains_the_changed_model_and_its_dependants(
    copy, tmp_path: Path
) -> None:
    config, out = copy
    change = ["modalities.skeleton.options.depth=1"]
    imu_metrics = (out / BASELINE_IMU / "metrics.json").read_bytes()
    lines = _run(config, out, change, retrain_changed=True)
    trained = _trained(lines)
    assert [line.split(": ", 1)[1].split(" (")[0] for line in trained] == [
        "baseline", "skeleton→imu dcat λ=1", "skeleton→imu logit_kd λ=1",
    ]  # fmt: skip
    assert sum(line.startswith("retraining runs/") for line in lines) == 3
    assert (out / BASELINE_IMU / "metrics.json").read_bytes() == imu_metrics  # reused
    # the results equal those of a fresh run with the new settings
    fresh = tmp_path / "fresh"
    _run(config, fresh, change)
    key = ("split", "seed", "target", "method", "source", "lambda")
    got = {
        tuple(r[k] for k in key): r["f1"] for r in json.loads((out / "results.json").read_text())
    }
    want = {
        tuple(r[k] for k in key): r["f1"] for r in json.loads((fresh / "results.json").read_text())
    }
    assert got == want
    # and the folder is consistent again: a plain rerun reuses everything
    assert _trained(_run(config, out, change)) == []


def test_a_run_without_a_fingerprint_is_not_reused(copy) -> None:
    config, out = copy
    (out / DCAT / "fingerprint.json").unlink()
    with pytest.raises(DcatError, match=r"dcat_from-skeleton_w1: no fingerprint\.json \(trained"):
        _run(config, out)


def test_the_dry_run_catches_a_video_encoder_on_a_series_with_nothing_written(
    tmp_path: Path,
) -> None:
    config = _config_file(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(DcatError) as caught:
        _run(config, out, ["modalities.imu.encoder=video", "modalities.imu.options={}"])
    message = str(caught.value)
    assert message.startswith("dry run of the imu model on one batch of training data (")
    assert "imu (2, 6, 32)" in message and "skeleton (2, 60, 16)" in message
    assert "VideoEncoder" in message and "\n" not in message
    assert not out.exists()


def test_the_dry_run_covers_every_source_target_pair(tmp_path: Path, monkeypatch) -> None:
    from dcat.training.methods.logit_kd import LogitDistillation

    def broken(self, batch):
        raise ValueError("logits of shape (2, 27) and (2, 26) differ")

    monkeypatch.setattr(LogitDistillation, "forward", broken)
    config = _config_file(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(
        DcatError,
        match=r"dry run of the skeleton → imu logit_kd model .*: "
        r"logits of shape \(2, 27\) and \(2, 26\) differ",
    ):
        _run(config, out)
    assert not out.exists()
