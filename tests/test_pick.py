"""The dcat pick is chosen on validation F1 only: test metrics never change it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dcat.data import PairedDataset
from dcat.experiment.config import load_config
from dcat.experiment.pick import mark_picks
from dcat.experiment.runner import load_dataset, run_experiment
from test_fingerprint import _config_file


def _record(method: str, seed: int, val: float | None, test: float, target: str = "imu") -> dict:
    source = "" if method == "baseline" else "skeleton"
    return {"split": "ood", "seed": seed, "target": target, "method": method, "val_f1": val,
            "f1": test, "source": source, "lambda": 1.0}  # fmt: skip


def test_the_pick_is_the_best_validation_f1_per_split_seed_and_target() -> None:
    records = [
        _record("baseline", 0, 0.70, 0.60), _record("dcat", 0, 0.75, 0.50),
        _record("logit_kd", 0, 0.72, 0.90),
        _record("baseline", 1, 0.80, 0.60), _record("dcat", 1, 0.80, 0.99),  # a tie
        _record("baseline", 1, 0.10, 0.10, target="skeleton"),
        _record("dcat", 2, None, 0.99), _record("baseline", 2, 0.50, 0.10),  # no val: never
    ]  # fmt: skip
    marked = mark_picks(records)
    assert [r["pick"] for r in marked] == [False, True, False, True, False, True, False, True]
    assert [{k: v for k, v in r.items() if k != "pick"} for r in marked] == records
    # test metrics never matter: scrambling them leaves every pick where it was
    scrambled = [{**r, "f1": 1.0 - r["f1"]} for r in records]
    assert [r["pick"] for r in mark_picks(scrambled)] == [r["pick"] for r in marked]


def test_corrupting_the_test_labels_leaves_the_pick_unchanged(tmp_path: Path) -> None:
    config = load_config(_config_file(tmp_path))
    data = load_dataset(config)
    run_experiment(config, tmp_path / "clean", data=data, log=lambda _: None)
    # the test part exactly as the clean run split it; its labels are shuffled
    test = json.loads((tmp_path / "clean" / "splits" / "ood_seed0.json").read_text())["test"]
    labels = data.labels.copy()
    labels[test] = np.random.default_rng(0).permutation(labels[test])
    assert (labels != data.labels).sum() > len(test) // 2
    corrupted = PairedDataset(
        data.inputs, labels, data.subjects, data.recordings, data.class_names, name=data.name,
        subject_names=data.subject_names, streams=data.streams,
    )  # fmt: skip
    run_experiment(config, tmp_path / "corrupted", data=corrupted, log=lambda _: None)
    runs = {
        name: json.loads((tmp_path / name / "results.json").read_text())
        for name in ("clean", "corrupted")
    }
    key = ("split", "seed", "target", "method", "source", "lambda")
    picks = {
        name: sorted(tuple(r[k] for k in key) for r in records if r["pick"])
        for name, records in runs.items()
    }
    assert picks["clean"] == picks["corrupted"] and len(picks["clean"]) == 2  # imu, skeleton
    assert [r["val_f1"] for r in runs["clean"]] == [r["val_f1"] for r in runs["corrupted"]]
    assert [r["f1"] for r in runs["clean"]] != [r["f1"] for r in runs["corrupted"]]
    report = (tmp_path / "clean" / "report.md").read_text()
    assert "| dcat pick |" in report or "dcat pick (best validation F1 per seed):" in report
    assert "dcat pick" in report.split("### target imu")[1].splitlines()[2]  # a table column
