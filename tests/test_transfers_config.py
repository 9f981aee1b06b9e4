"""Several sources per target, combined objectives from one source, derived modalities, the
plain reference and augmentation, from the experiment configuration to the results."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from dcat.errors import DcatError
from dcat.experiment.config import load_config
from dcat.experiment.plan import plan_jobs
from dcat.experiment.runner import load_dataset, run_experiment
from test_experiment import TINY as EXPERIMENT_TINY

RIGHT_ARM = [8, 9, 10, 11]  # Kinect v1: right shoulder, elbow, wrist, hand

CONFIG = {
    **EXPERIMENT_TINY,
    "name": "tiny_transfers",
    "modalities": {
        **EXPERIMENT_TINY["modalities"],
        "skeleton_arm": {
            "encoder": "sequence",
            "options": {"d_model": 16, "depth": 1},
            "derive": {"modality": "skeleton", "points": RIGHT_ARM},
        },
    },
    "data": {
        **EXPERIMENT_TINY["data"],
        "centering": {"skeleton": "mean", "skeleton_arm": "root:0"},
        "augment": {"imu": {"rotation": 20.0, "scaling": 0.1, "jitter": 0.05, "time_warp": 0.1}},
    },
    "transfers": [
        {"sources": ["skeleton", "skeleton_arm"], "target": "imu"},
        {
            "target": "imu",
            "sources": [
                {"modality": "skeleton", "method": "dcat"},
                {"modality": "skeleton", "method": {"name": "logit_kd", "temperature": 2.0},
                 "weight": 0.5},
            ],
        },
    ],
    "methods": ["dcat", "dcat+logit_kd"],
    "lambdas": [],
    "train": {"max_epochs": 1, "batch_size": 32},
}  # fmt: skip


def _write(tmp_path, data: dict):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _config(tmp_path, **changes):
    return load_config(_write(tmp_path, {**CONFIG, **changes}))


def test_the_plan_has_one_model_per_method_entry_with_every_source(tmp_path) -> None:
    jobs = plan_jobs(_config(tmp_path))
    folders = [j.folder.removeprefix("runs/ood/seed0/") for j in jobs]
    assert folders == [
        "imu/baseline", "skeleton/baseline", "skeleton_arm/baseline", "imu/plain",
        "imu/dcat_from-skeleton+skeleton_arm_w1",
        "imu/dcat+logit_kd_from-skeleton+skeleton_arm_w1",
        "imu/dcat+logit_kd_temperature2_from-skeleton_w1+0.5",
    ]  # fmt: skip
    both = jobs[5]
    assert [(p.modality, p.tag, p.weight) for p in both.parts] == [
        ("skeleton", "dcat", 1.0), ("skeleton", "logit_kd", 1.0),
        ("skeleton_arm", "dcat", 1.0), ("skeleton_arm", "logit_kd", 1.0),
    ]  # fmt: skip
    explicit = jobs[6]
    assert explicit.weight is None and explicit.source == "skeleton"
    assert dict(explicit.parts[1].options) == {"temperature": 2.0}


@pytest.mark.parametrize(
    ("transfer", "message"),
    [
        ({"source": "skeleton", "sources": ["skeleton"], "target": "imu"},
         r"transfers\[0\]: give exactly one of source and sources"),
        ({"sources": ["skeleton", {"modality": "skeleton", "method": "dcat"}], "target": "imu"},
         "sources are either all names"),
        ({"sources": ["skeleton", "skeleton"], "target": "imu"}, "lists a modality twice"),
        ({"sources": ["skeleton", "mic"], "target": "imu"},
         r"transfers\[0\]\.sources: modality 'mic' is not declared"),
        ({"sources": ["imu"], "target": "imu"}, "source and target are both 'imu'"),
        ({"sources": [{"modality": "skeleton", "method": "mixup"}], "target": "imu"},
         r"transfers\[0\]\.sources\[0\]\.method: unknown \['mixup'\]"),
    ],
)  # fmt: skip
def test_bad_transfers_are_one_line_errors(tmp_path, transfer: dict, message: str) -> None:
    with pytest.raises(DcatError, match=message):
        _config(tmp_path, transfers=[transfer])


def test_bad_derived_modalities_and_augmentations_are_named(tmp_path) -> None:
    modalities = {**CONFIG["modalities"]}
    modalities["skeleton_arm"] = {**modalities["skeleton_arm"], "derive": {"modality": "skeleton"}}
    with pytest.raises(DcatError, match="give exactly one of channels, points and virtual_imu"):
        _config(tmp_path, modalities=modalities)
    modalities["skeleton_arm"]["derive"] = {"modality": "skeleton", "channels": [0, 60]}
    config = _config(tmp_path, modalities=modalities)
    with pytest.raises(DcatError, match=r"modalities\.skeleton_arm\.derive: .*out of range \[60\]"):
        load_dataset(config)
    modalities["skeleton_arm"]["derive"] = {"modality": "depth", "channels": [0]}
    with pytest.raises(DcatError, match="'depth' is not in the data set"):
        load_dataset(_config(tmp_path, modalities=modalities))
    data = {**CONFIG["data"], "augment": {"imu": {"rotation": 200}}}
    with pytest.raises(DcatError, match=r"data\.augment\.imu\.rotation must be ≤ 180, got 200"):
        _config(tmp_path, data=data)


def test_a_derived_modality_is_its_base_channels(tmp_path) -> None:
    data = load_dataset(_config(tmp_path))
    arm = data.inputs["skeleton_arm"]
    channels = [3 * p + a for p in RIGHT_ARM for a in range(3)]
    np.testing.assert_array_equal(arm, data.inputs["skeleton"][:, channels])
    assert data.shape("skeleton_arm") == (12, 16)


@pytest.mark.slow
def test_several_sources_combined_objectives_and_the_plain_reference_end_to_end(tmp_path):
    config = _config(tmp_path)
    out = tmp_path / "out"
    lines: list[str] = []
    report = run_experiment(config, out, log=lines.append)
    records = {(r["method"], r["source"], r["lambda"]): r
               for r in json.loads((out / "results.json").read_text())}  # fmt: skip
    assert set(records) == {
        ("baseline", "", None), ("plain", "", None),
        ("dcat", "skeleton+skeleton_arm", 1.0),
        ("dcat+logit_kd", "skeleton+skeleton_arm", 1.0),
        ("dcat+logit_kd_temperature2", "skeleton", None),
    }  # fmt: skip
    run = out / records["dcat+logit_kd", "skeleton+skeleton_arm", 1.0]["run"]
    sources = yaml.safe_load((run / "config.yaml").read_text())["task"]["sources"]
    assert [(s["name"], s["modality"], s["method"]) for s in sources] == [
        ("skeleton-dcat", "skeleton", "dcat"), ("skeleton-logit_kd", "skeleton", "logit_kd"),
        ("skeleton_arm-dcat", "skeleton_arm", "dcat"),
        ("skeleton_arm-logit_kd", "skeleton_arm", "logit_kd"),
    ]  # fmt: skip
    explicit = out / records["dcat+logit_kd_temperature2", "skeleton", None]["run"]
    weights = [s["weight"] for s in yaml.safe_load((explicit / "config.yaml").read_text())
               ["task"]["sources"]]  # fmt: skip
    assert weights == [1.0, 0.5]
    fingerprint = json.loads((run / "fingerprint.json").read_text())
    assert [s["modality"] for s in fingerprint["sources"]] == ["skeleton", "skeleton_arm"]
    assert fingerprint["data"]["augment"]["rotation"] == 20.0
    plain = out / records["plain", "", None]["run"]
    card = json.loads((plain / "model_card.json").read_text())
    assert json.dumps(card).count('"attention": "none"') == 1
    text = report.read_text()
    assert "### target imu ← source skeleton+skeleton_arm" in text
    assert "| D-CAT + Logit KD |" in text.replace("D-CAT + Logit KD (", "x")
    assert "Against the plain reference (imu alone" in text
    # a rerun reuses every model
    again: list[str] = []
    run_experiment(config, out, log=again.append)
    assert sum("(done before)" in line for line in again) == len(records) + 2


@pytest.mark.slow
def test_refit_retrains_the_references_and_the_pick_on_train_plus_val(
    tmp_path, monkeypatch
) -> None:
    import dcat.experiment.grid
    from dcat.experiment.pick import find_pick

    seen: dict[str, int] = {}
    real_fit = dcat.experiment.grid.fit

    def fit(task, train, val, options, run_dir, **kwargs):
        seen[str(run_dir)] = len(train)
        return real_fit(task, train, val, options, run_dir, **kwargs)

    monkeypatch.setattr(dcat.experiment.grid, "fit", fit)

    config = load_config(_write(tmp_path, {
        **EXPERIMENT_TINY, "name": "tiny_refit", "methods": ["dcat", "logit_kd"], "lambdas": [],
        "refit": True, "train": {"max_epochs": 3, "batch_size": 32},
    }))  # fmt: skip
    out = tmp_path / "out"
    lines: list[str] = []
    report = run_experiment(config, out, log=lines.append)
    records = json.loads((out / "results.json").read_text())
    originals = [r for r in records if not r["refit"]]
    refits = [r for r in records if r["refit"]]
    pick = next(r for r in originals if r["pick"] and r["target"] == "imu")
    # the target's references and its pick; the source-only skeleton is never refitted
    expected = {("imu", "baseline"), ("imu", "plain"), ("imu", pick["method"])}
    assert {(r["target"], r["method"]) for r in refits} == expected
    assert all(r["val_f1"] is None and not r["pick"] for r in refits)  # never candidates
    for r in refits:
        original = next(o for o in originals if o["run"] == r["run"].removesuffix("_refit"))
        best_epoch = json.loads((out / original["run"] / "metrics.json").read_text())["val"]
        refit_run = yaml.safe_load((out / r["run"] / "config.yaml").read_text())
        assert refit_run["train"]["max_epochs"] == best_epoch["epoch"] + 1
        assert refit_run["job"]["refit"] is True
        fingerprint = json.loads((out / r["run"] / "fingerprint.json").read_text())
        assert fingerprint["refit"] == {
            "of": original["run"], "epochs": best_epoch["epoch"] + 1,
            "digest": fingerprint["refit"]["digest"],
        }  # fmt: skip
    # refits train on training + validation subjects: more samples than the original saw
    split = json.loads((out / "splits" / "ood_seed0.json").read_text())
    sizes = {run.removeprefix(str(out) + "/"): n for run, n in seen.items()}
    assert sizes[pick["run"]] == len(split["train"])
    assert sizes[pick["run"] + "_refit"] == len(split["train"]) + len(split["val"])
    text = report.read_text()
    assert "After refitting on all training subjects" in text and "| dcat pick (refit) |" in text
    assert "| pick vs baseline |" in text and "| pick vs plain |" in text
    assert "The pick was also a model of best test F1 in" in text
    # the exported pick is the refit of the pick
    assert find_pick(out, "imu")["run"] == pick["run"] + "_refit"
    again: list[str] = []
    run_experiment(config, out, log=again.append)
    assert sum("(done before)" in line for line in again) == len(records)


def test_refit_sources_needs_refit(tmp_path) -> None:
    with pytest.raises(DcatError, match=r"config.yaml: refit_sources: needs refit: true"):
        load_config(_write(tmp_path, {**EXPERIMENT_TINY, "refit_sources": True}))


@pytest.mark.slow
def test_refit_sources_refits_the_picks_teacher_first_and_the_pick_learns_from_it(
    tmp_path, monkeypatch
) -> None:
    import dcat.experiment.grid
    import dcat.experiment.pick
    import dcat.experiment.runner
    from dcat.training.run_folder import RunFolder

    real_mark = dcat.experiment.pick.mark_picks

    def mark_dcat(records, rule="seed"):  # the pick must learn from a source here
        marked = real_mark(records, rule)
        for r in marked:
            r["pick"] = not r.get("refit") and r["target"] == "imu" and r["method"] == "dcat"
        return marked

    monkeypatch.setattr(dcat.experiment.runner, "mark_picks", mark_dcat)
    seen: dict[str, int] = {}
    real_fit = dcat.experiment.grid.fit

    def fit(task, train, val, options, run_dir, **kwargs):
        seen[str(run_dir)] = len(train)
        return real_fit(task, train, val, options, run_dir, **kwargs)

    loaded: list[str] = []
    real_load = RunFolder.load_target

    def load_target(self, net):
        loaded.append(str(self.path))
        return real_load(self, net)

    monkeypatch.setattr(dcat.experiment.grid, "fit", fit)
    monkeypatch.setattr(RunFolder, "load_target", load_target)
    config = load_config(_write(tmp_path, {
        **EXPERIMENT_TINY, "name": "tiny_refit_sources", "methods": ["dcat"], "lambdas": [],
        "refit": True, "refit_sources": True, "train": {"max_epochs": 3, "batch_size": 32},
    }))  # fmt: skip
    out = tmp_path / "out"
    report = run_experiment(config, out, log=lambda s: None)
    records = json.loads((out / "results.json").read_text())
    refits = [r["run"] for r in records if r["refit"]]
    teacher, pick = "runs/ood/seed0/skeleton/baseline", "runs/ood/seed0/imu/dcat_from-skeleton_w1"
    # the teacher's refit is trained before the pick's, on training + validation samples
    assert refits.index(teacher + "_refit") < refits.index(pick + "_refit")
    split = json.loads((out / "splits" / "ood_seed0.json").read_text())
    sizes = {run.removeprefix(str(out) + "/"): n for run, n in seen.items()}
    assert sizes[teacher] == len(split["train"])
    assert sizes[teacher + "_refit"] == len(split["train"]) + len(split["val"])
    best = json.loads((out / teacher / "metrics.json").read_text())["val"]["epoch"]
    teacher_run = yaml.safe_load((out / teacher / "config.yaml").read_text())
    refit_run = yaml.safe_load((out / (teacher + "_refit") / "config.yaml").read_text())
    assert refit_run["train"]["max_epochs"] == best + 1 <= teacher_run["train"]["max_epochs"]
    # the pick's refit learns from the refitted teacher, and its fingerprint says so
    pick_loads = [p for p in loaded if p.endswith("/" + teacher) or p.endswith(teacher + "_refit")]
    assert pick_loads[-1] == str(out / (teacher + "_refit"))
    fingerprint = json.loads((out / (pick + "_refit") / "fingerprint.json").read_text())
    assert fingerprint["refit"]["sources"] == [teacher + "_refit"]
    assert (
        yaml.safe_load((out / (pick + "_refit") / "config.yaml").read_text())["job"][
            "sources_refit"
        ]
        is True
    )
    # the references' refits have no sources; the report shows the teacher's refit
    plain = json.loads((out / "runs/ood/seed0/imu/plain_refit/fingerprint.json").read_text())
    assert "sources" not in plain["refit"]
    assert "| Source skeleton (refit) |" in report.read_text()
    again: list[str] = []
    run_experiment(config, out, log=again.append)
    assert sum("(done before)" in line for line in again) == len(records)
    # without refit_sources the pick's refit learns from the grid's teacher: it is retrained,
    # the teacher is not refitted, and the report shows no refitted teacher
    plain_refit = load_config(_write(tmp_path, {
        **EXPERIMENT_TINY, "name": "tiny_refit_sources", "methods": ["dcat"], "lambdas": [],
        "refit": True, "train": {"max_epochs": 3, "batch_size": 32},
    }))  # fmt: skip
    lines: list[str] = []
    report = run_experiment(plain_refit, out, log=lines.append)
    assert f"retraining {pick}_refit: its original, epoch count or sources changed" in lines
    refits = [r["run"] for r in json.loads((out / "results.json").read_text()) if r["refit"]]
    assert teacher + "_refit" not in refits and pick + "_refit" in refits
    assert (
        "sources"
        not in json.loads((out / (pick + "_refit") / "fingerprint.json").read_text())["refit"]
    )
    assert "(refit) |" in report.read_text() and "Source skeleton (refit)" not in report.read_text()


@pytest.mark.slow
def test_the_mean_rule_picks_one_configuration_and_refits_it_in_every_seed(tmp_path) -> None:
    config = load_config(_write(tmp_path, {
        **EXPERIMENT_TINY, "name": "tiny_mean", "methods": ["dcat", "logit_kd"], "lambdas": [],
        "seeds": [0, 1], "refit": True, "selection": "mean", "reference": False,
        "splits": [{"kind": "ood", "train_subjects": [1, 2, 3], "test_subjects": [4],
                    "val_size": 0.34, "val_rotation": True}],
        "train": {"max_epochs": 2, "batch_size": 32},
    }))  # fmt: skip
    out = tmp_path / "out"
    report = run_experiment(config, out, log=lambda s: None)
    records = json.loads((out / "results.json").read_text())
    picks = [r for r in records if r["pick"] and r["target"] == "imu"]
    assert len(picks) == 2 and len({(r["method"], r["source"], r["lambda"]) for r in picks}) == 1
    originals = [r for r in records if not r["refit"] and r["target"] == "imu"]
    mean = {}
    for r in originals:
        mean.setdefault((r["method"], r["source"]), []).append(r["val_f1"])
    best = max(mean.values(), key=lambda v: sum(v) / len(v))
    assert sum(best) / 2 == pytest.approx(sum(r["val_f1"] for r in picks) / 2)
    refits = {(r["seed"], r["method"]) for r in records if r["refit"]}
    assert refits == {(s, m) for s in (0, 1) for m in ("baseline", picks[0]["method"])}
    # the two seeds validated on different training subjects
    held = [set(json.loads((out / "splits" / f"ood_seed{s}.json").read_text())["val"])
            for s in (0, 1)]  # fmt: skip
    assert held[0] and held[1] and not held[0] & held[1]
    assert "| mean (used) |" in report.read_text()
