"""The dcat pick is chosen on validation F1 only: test metrics never change it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dcat.data import PairedDataset
from dcat.errors import DcatError
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


def _results(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(records))
    return folder


def test_find_pick_takes_the_median_seed_unless_told(tmp_path: Path) -> None:
    import pytest

    from dcat.errors import DcatError
    from dcat.experiment.pick import find_pick

    records = [
        {**_record("dcat", seed, val, 0.0), "pick": True, "run": f"runs/ood/seed{seed}/imu/x"}
        for seed, val in [(0, 0.9), (1, 0.5), (2, 0.7), (3, 0.6)]
    ] + [{**_record("baseline", 0, 0.1, 0.0), "pick": False, "run": "b"}]
    folder = _results(tmp_path / "out", records)
    # validation F1 0.5, 0.6, 0.7, 0.9: the lower middle one is seed 3's 0.6
    assert find_pick(folder, "imu")["seed"] == 3
    assert find_pick(folder, "imu", seed=0)["run"] == "runs/ood/seed0/imu/x"
    for kwargs, message in [
        ({"target": "skeleton"}, r"no pick for target 'skeleton' \(picked targets: \['imu'\]\)"),
        ({"target": "imu", "seed": 7}, r"no seed 7; seeds: \[0, 1, 2, 3\]"),
        ({"target": "imu", "split": "id"}, r"no 'id' split; choose from \['ood'\]"),
    ]:
        with pytest.raises(DcatError, match=message):
            find_pick(folder, **kwargs)
    two = _results(tmp_path / "two", [*records, {**records[0], "split": "id"}])
    with pytest.raises(DcatError, match=r"picks in splits \['id', 'ood'\]; add --split"):
        find_pick(two, "imu")
    assert find_pick(two, "imu", split="id")["split"] == "id"
    with pytest.raises(DcatError, match=r"results\.json not found: --pick needs"):
        find_pick(tmp_path / "nothing", "imu")


def test_export_the_pick_from_the_command_line(tmp_path: Path, capsys) -> None:
    import pytest

    pytest.importorskip("onnxruntime")
    from dcat.cli import main

    config = _config_file(tmp_path)
    out = tmp_path / "out"
    run_experiment(load_config(config), out, log=lambda _: None)
    records = json.loads((out / "results.json").read_text())
    (pick,) = [r for r in records if r["pick"] and r["target"] == "imu"]
    assert main(["export", str(out), "--pick", "imu", "--out", str(tmp_path / "model")]) == 0
    said = capsys.readouterr().err
    assert f"dcat pick for imu (ood, seed 0): {pick['method']}, validation F1" in said
    card = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert card["modality"] == "imu"
    # the run's folder, relative to the export (no absolute path leaves the machine)
    assert not Path(card["run"]["dir"]).is_absolute()
    assert (tmp_path / "model" / card["run"]["dir"]).resolve() == (out / pick["run"]).resolve()
    assert main(["export", str(out / pick["run"]), "--seed", "0"]) == 2  # --seed needs --pick
    assert "use them with --pick TARGET" in capsys.readouterr().err


def test_the_mean_rule_picks_one_configuration_for_every_seed() -> None:
    records = [
        _record("baseline", 0, 0.70, 0.60), _record("dcat", 0, 0.90, 0.50),
        _record("logit_kd", 0, 0.75, 0.90),
        _record("baseline", 1, 0.70, 0.60), _record("dcat", 1, 0.50, 0.99),
        _record("logit_kd", 1, 0.74, 0.10),
        _record("rkd", 1, 0.99, 0.10),  # only in seed 1: not a candidate of the mean rule
    ]  # fmt: skip
    # per seed: dcat (0.90) then rkd (0.99); mean: dcat 0.70, logit_kd 0.745, baseline 0.70
    assert [r["pick"] for r in mark_picks(records)] == [0, 1, 0, 0, 0, 0, 1]
    assert [r["pick"] for r in mark_picks(records, "mean")] == [0, 0, 1, 0, 0, 1, 0]
    # a tie of means goes to the simpler model, and test metrics never matter
    tied = [{**r, "val_f1": 0.5, "f1": 1.0 - r["f1"]} for r in records]
    assert [r["pick"] for r in mark_picks(tied, "mean")] == [1, 0, 0, 1, 0, 0, 0]
    with pytest.raises(DcatError, match=r"pick rule must be one of \['seed', 'mean'\]"):
        mark_picks(records, "median")


def test_the_report_compares_both_pick_rules_on_the_same_models() -> None:
    from dcat.experiment.report import selection_rows

    records = [
        _record("baseline", 0, 0.70, 0.60), _record("dcat", 0, 0.90, 0.50),
        _record("logit_kd", 0, 0.75, 0.90),
        _record("baseline", 1, 0.70, 0.60), _record("dcat", 1, 0.50, 0.99),
        _record("logit_kd", 1, 0.74, 0.70),
        _record("baseline", 2, 0.70, 0.60), _record("dcat", 2, 0.80, 0.65),
        _record("logit_kd", 2, 0.60, 0.60),
    ]  # fmt: skip
    rows = selection_rows(records, "ood", "imu", "mean")
    assert rows is not None and rows[0][0] == "Pick rule"
    # seed: dcat, logit_kd, dcat → Δ (−0.10, +0.10, +0.05); the test-best model in seed 2 only
    assert rows[1][:2] == ["seed", "+0.017"] and rows[1][4] == "1 of 3"
    # mean: dcat 0.733, logit_kd 0.697 → dcat everywhere: Δ (−0.10, +0.39, +0.05)
    assert rows[2][:2] == ["mean (used)", "+0.113"] and rows[2][4] == "2 of 3"
