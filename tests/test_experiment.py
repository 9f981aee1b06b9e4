"""Experiment config validation, the protocol end to end, the report, and the CLI."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from dcat.cli import main
from dcat.experiment.config import apply_overrides, list_presets, load_config
from dcat.experiment.recipe import train_options
from dcat.experiment.runner import RESULT_FIELDS, plan_jobs, run_experiment

TINY = {
    "name": "tiny",
    "data": {
        "dataset": "utd_mhad_embedded",
        "options": {"steps": {"imu": 32, "skeleton": 16}, "subjects": [1, 2, 3, 4]},
    },
    "modalities": {
        "imu": {"encoder": "imu", "options": {"widths": [8, 16, 16]}},
        "skeleton": {"encoder": "sequence", "options": {"d_model": 16, "depth": 2}},
    },
    "splits": [{"kind": "ood", "train_subjects": [1, 2, 3], "test_subjects": [4]}],
    "seeds": [0],
    "transfers": [{"source": "skeleton", "target": "imu"}],
    "methods": ["dcat", "dcat_no_mcma", "logit_kd"],
    "lambdas": [0.1, 1.0],
    "d_out": 16,
    "train": {"max_epochs": 2, "batch_size": 32},
}


def _write(tmp_path, data: dict, name: str = "config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_validates(preset: str) -> None:
    config = load_config(preset)
    # a preset transfers, or trains baselines only (utd_mhad_teacher, the teacher from elsewhere)
    assert config.splits and (config.transfers or not config.methods)
    for modality in config.modalities:
        assert train_options(config, modality, 0).max_epochs >= 1


def test_presets_load_and_validate() -> None:
    assert {"utd_mhad_demo", "utd_mhad_paper", "utd_mhad_transfer"} <= set(list_presets())
    # the demo: dcat's recommended form, a strong skeleton teacher for a side-placed IMU
    demo = load_config("utd_mhad_demo")
    assert demo.seeds == [0, 1, 2] and [s.kind for s in demo.splits] == ["ood"]
    assert [(t.source, t.target) for t in demo.transfers] == [("skeleton", "imu")]
    assert demo.modalities["imu"].attention == "side"
    assert demo.modalities["skeleton"].encoder == "skeleton"
    teacher = train_options(demo, "skeleton", 0)
    recipe = (teacher.optimizer, teacher.schedule, teacher.label_smoothing)
    assert recipe == ("adamw", "cosine", 0.1)
    assert demo.data.centering == {"skeleton": "body"} and demo.data.layout("skeleton") is not None
    # the paper's form: serial attention, the paper's networks, both directions and splits
    paper = load_config("utd_mhad_paper")
    assert paper.seeds == [0, 1, 2] and {s.kind for s in paper.splits} == {"id", "ood"}
    assert [(t.source, t.target) for t in paper.transfers] == [
        ("skeleton", "imu"),
        ("imu", "skeleton"),
    ]
    assert {m.attention for m in paper.modalities.values()} == {"serial"}
    assert paper.modalities["skeleton"].encoder == "sequence"
    assert train_options(paper, "skeleton", 0).optimizer == "adam"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trian": {}}, r"unknown key\(s\) \['trian'\]; known keys"),
        (
            {"data": {"dataset": "utd_mhad_embedded", "root_dir": "x"}},
            r"unknown key\(s\) \['root_dir'\] under data",
        ),
        ({"train": {"epochs": 3}}, r"train: unknown training option\(s\) \['epochs'\]"),
        ({"weight": -0.5}, r"weight \(λ\) must be ≥ 0, got -0.5"),
        ({"lambdas": [1.0, -1.0]}, r"lambdas\[1\] \(λ\) must be ≥ 0"),
        ({"methods": ["dcat", "mixup"]}, r"methods: unknown \['mixup'\]"),
        (
            {"transfers": [{"source": "audio", "target": "imu"}]},
            r"transfers\[0\]\.source: modality 'audio' is not declared",
        ),
        (
            {"modalities": {"imu": {"encoder": "lstm"}}},
            r"modalities\.imu\.encoder: unknown encoder 'lstm'",
        ),
        ({"seeds": "zero"}, r"seeds: must be a list, got 'zero'"),
        ({"d_out": "big"}, r"d_out: must be int, got 'big'"),
        ({"splits": [{"kind": "loso"}]}, r"splits\[0\]\.kind: must be one of \['id', 'ood'\]"),
    ],
)
def test_config_errors_name_the_key(tmp_path, change: dict, message: str) -> None:
    data = {**TINY, **change}
    if "modalities" in change:
        data["transfers"] = []
    with pytest.raises(ValueError, match=message):
        load_config(_write(tmp_path, data))


def test_overrides_and_missing_config(tmp_path) -> None:
    config = load_config(
        _write(tmp_path, TINY),
        ["train.max_epochs=5", "seeds=[3, 4]", "data.options.subjects=[1, 2]"],
    )
    assert config.train["max_epochs"] == 5 and config.seeds == [3, 4]
    assert config.data.options["subjects"] == [1, 2]
    with pytest.raises(ValueError, match=r"must look like key\.path=value"):
        apply_overrides({}, ["seeds"])
    with pytest.raises(ValueError, match=r"'nope\.yaml': no such file, and not a preset"):
        load_config("nope.yaml")


def test_plan_has_baselines_first_and_the_lambda_sweep(tmp_path) -> None:
    jobs = plan_jobs(load_config(_write(tmp_path, TINY)))
    methods = [(j.method, j.target, j.weight) for j in jobs]
    assert methods[:2] == [("baseline", "imu", None), ("baseline", "skeleton", None)]
    assert ("dcat", "imu", 0.1) in methods and methods.count(("dcat", "imu", 1.0)) == 1
    assert methods[2] == ("plain", "imu", None)  # the plain reference of the target
    assert len(jobs) == 2 + 1 + 3 + 1


@pytest.mark.slow
def test_experiment_end_to_end_and_resume(tmp_path) -> None:
    config = load_config(_write(tmp_path, TINY))
    lines: list[str] = []
    report = run_experiment(config, tmp_path / "out", log=lines.append)
    out = tmp_path / "out"
    records = json.loads((out / "results.json").read_text())
    assert len(records) == 7
    assert {r["method"] for r in records} == {
        "baseline", "plain", "dcat", "dcat_no_mcma", "logit_kd",
    }  # fmt: skip
    assert all(set(r) == set(RESULT_FIELDS) for r in records)
    assert all(0.0 <= r["f1"] <= 1.0 for r in records)
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7 and list(rows[0]) == RESULT_FIELDS
    split = json.loads((out / "splits" / "ood_seed0.json").read_text())
    # each part's subjects by name: UTD-MHAD's subjects are named by their numbers
    assert split["test_subjects"] == ["4"]
    assert sorted(split["train_subjects"] + split["val_subjects"]) == ["1", "2", "3"]
    text = report.read_text()
    header = (
        "| Metric | Baseline | Plain reference | Source skeleton (its baseline) | D-CAT | "
        "No MCMA | Logit KD |"
    )
    assert header in text
    for metric in ("Accuracy", "Recall", "Precision", "F1-Score"):
        assert f"| {metric} |" in text
    assert "## Effect of the cross-attention weight λ" in text and "| 0.1 |" in text
    assert "| λ | Validation F1 | Accuracy |" in text  # λ is chosen on validation
    assert "Against the plain reference (imu alone" in text and "| Δ F1 vs plain |" in text
    assert (out / "f1_ood.png").stat().st_size > 1000
    assert (out / "confusion_ood_imu_from-skeleton.png").is_file()
    assert lines[-1].startswith("report:") and any("[7/7]" in line for line in lines)
    # running again trains nothing and gives the same results
    again: list[str] = []
    run_experiment(config, out, log=again.append)
    assert sum("(done before)" in line for line in again) == 7
    assert json.loads((out / "results.json").read_text()) == records


def test_cli_exit_codes(tmp_path, capsys) -> None:
    assert main(["presets"]) == 0
    assert "utd_mhad_demo" in capsys.readouterr().out
    bad = _write(tmp_path, {**TINY, "trian": 1})
    assert main(["experiment", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "dcat: error:" in err and "trian" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing written for a rejected config
    with pytest.raises(ValueError):
        main(["experiment", str(bad), "--debug"])


@pytest.mark.slow
@pytest.mark.data
def test_avletters_lips_and_mfcc_experiment(tmp_path) -> None:
    from conftest import shared_dataset

    root = shared_dataset("avletters")
    config = load_config("avletters", [
        f"data.root={root}", "data.options.speakers=[Anya, Bill, Faye, Yi]",
        "data.options.frames=8", "splits=[{kind: ood, test_subjects: [Yi]}]",
        "train.max_epochs=2", "modalities.lips.options.d_model=32", "d_out=32",
    ])  # fmt: skip
    report = run_experiment(config, tmp_path, log=lambda _: None)
    records = json.loads((tmp_path / "results.json").read_text())
    assert {(r["target"], r["method"]) for r in records} == {
        ("lips", "baseline"),
        ("mfcc", "baseline"),
        ("lips", "plain"),
        ("mfcc", "plain"),
        ("lips", "dcat"),
        ("lips", "dcat_no_mcma"),
        ("mfcc", "dcat"),
        ("mfcc", "dcat_no_mcma"),
    }
    split = json.loads((tmp_path / "splits" / "ood_seed0.json").read_text())
    assert split["test_subjects"] == ["Yi"]  # speakers by name, as written in the config
    assert sorted(split["train_subjects"] + split["val_subjects"]) == ["Anya", "Bill", "Faye"]
    text = report.read_text()
    assert "### target lips ← source mfcc" in text and "### target mfcc ← source lips" in text
    assert all(0.0 <= r["f1"] <= 1.0 for r in records)


def test_the_few_labels_preset_emulates_the_field_situation() -> None:
    from dcat.experiment.plan import plan_jobs

    teacher, student = load_config("utd_mhad_teacher"), load_config("utd_mhad_few_labels")
    assert teacher.data.options["subjects"] == [1, 3] and not teacher.transfers
    assert student.modalities["skeleton"].teacher == (
        "runs/utd_mhad_teacher/runs/id/seed0/skeleton/baseline"
    )
    assert [s.label for s in student.splits] == [
        "ood_unlabelled", "ood_labelled1", "ood_labelled1+5", "ood_labelled1+5+7",
    ]  # fmt: skip
    split = student.splits[1]
    # the student never sees the teacher's subjects 1 and 3 but as its labels allow
    assert (split.train_subjects, split.val_subjects) == ([1, 5, 7], [3])
    assert len(student.seeds) == 10
    jobs = plan_jobs(student)
    assert not any(j.target == "skeleton" for j in jobs)  # the teacher is never trained here
    zero = {j.method for j in jobs if j.split == "ood_unlabelled" and j.seed == 0}
    assert "baseline" not in zero and "plain" not in zero and "dcat" not in zero
    assert {"logit_kd", "pseudo_label"} <= zero
