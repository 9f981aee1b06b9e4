"""Teachers trained elsewhere: a run folder or an export as a frozen source, its card checked,
its classes mapped by name, its identity in the fingerprint (issue 28)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dcat.errors import DcatError
from dcat.experiment.config import load_config
from dcat.experiment.runner import run_experiment
from dcat.training.elsewhere import MISSING_LOGIT, check_card, load_teacher, map_classes
from test_experiment import TINY, _write

SKELETON_ONLY = {
    **TINY, "name": "teacher", "transfers": [], "methods": [], "lambdas": [], "reference": False,
    "modalities": {"skeleton": TINY["modalities"]["skeleton"]},
    "splits": [{"kind": "ood", "train_subjects": [1, 2], "val_subjects": [3],
                "test_subjects": [4]}],
    "train": {"max_epochs": 3, "batch_size": 32},
}  # fmt: skip


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory) -> Path:
    """A skeleton model trained by an earlier dcat run: the teacher "from elsewhere"."""
    folder = tmp_path_factory.mktemp("elsewhere")
    config = load_config(_write(folder, SKELETON_ONLY))
    run_experiment(config, folder / "out", log=lambda line: None)
    return folder / "out" / "runs" / "ood" / "seed0" / "skeleton" / "baseline"


def test_a_run_folder_and_its_export_are_one_teacher(teacher_run, tmp_path) -> None:
    from dcat.deploy.export import export_model

    from_run = load_teacher(teacher_run)
    assert from_run.card.modality == "skeleton" and len(from_run.card.class_names) == 27
    assert from_run.normalization is not None
    exported = export_model(teacher_run, tmp_path / "export", log=lambda line: None)
    from_export = load_teacher(exported)
    assert from_export.digest == from_run.digest  # the same weights and card
    x = torch.randn(3, *from_run.card.input_shape)
    torch.testing.assert_close(from_export.net(x)[0], from_run.net(x)[0])
    assert not any(p.requires_grad for p in from_run.net.parameters())
    with pytest.raises(DcatError, match="not a dcat run folder"):
        load_teacher(tmp_path)


def test_classes_are_mapped_by_name(teacher_run) -> None:
    teacher = load_teacher(teacher_run)
    own = teacher.card.class_names
    wanted = [own[3], "somersault", own[0], own[5]]
    net, missing = map_classes(teacher, wanted, "here")
    assert missing == ["somersault"] and net.num_classes == 4
    x = torch.randn(2, *teacher.card.input_shape)
    original, mapped = teacher.net(x)[0], net(x)[0]
    torch.testing.assert_close(mapped[:, [0, 2, 3]], original[:, [3, 0, 5]])
    assert torch.all(mapped[:, 1] == MISSING_LOGIT)
    assert mapped.softmax(-1)[:, 1].max().item() == 0.0
    with pytest.raises(DcatError, match="here: the teacher shares no class with the data"):
        map_classes(teacher, ["x", "y"], "here")


def test_a_card_that_does_not_describe_the_data_is_refused_naming_the_field(teacher_run) -> None:
    card = load_teacher(teacher_run).card
    c, t = card.input_shape
    good = {"kind": "series", "shape": (c, t), "rate_hz": card.rate_hz, "channels": None}
    check_card(card, where="w", **good)
    cases = [
        ({"kind": "video", "shape": (t, 3, 8, 8)}, "w: kind: the teacher reads series"),
        ({"shape": (c + 3, t)}, f"w: channels: the teacher reads samples of shape \\[{c}, {t}\\]"),
        ({"shape": (c, t + 4)}, f"w: window: the teacher reads {t} steps a sample, the data's "
                                f"samples hold {t + 4}"),
    ]  # fmt: skip
    if card.rate_hz is not None:
        cases.append(({"rate_hz": 2.5 * card.rate_hz}, "w: rate_hz: the teacher was trained at"))
    for change, message in cases:
        with pytest.raises(DcatError, match=message):
            check_card(card, where="w", **{**good, **change})


def test_an_experiment_learns_from_a_teacher_trained_elsewhere(teacher_run, tmp_path) -> None:
    curve = {
        **TINY, "methods": ["dcat", "logit_kd", "pseudo_label"], "lambdas": [],
        "modalities": {**TINY["modalities"],
                       "skeleton": {**TINY["modalities"]["skeleton"], "teacher": str(teacher_run)}},
        "splits": [{"kind": "ood", "train_subjects": [1, 2], "val_subjects": [3],
                    "test_subjects": [4], "labelled_subjects": [[], [1]]}],
    }  # fmt: skip
    lines: list[str] = []
    run_experiment(load_config(_write(tmp_path, curve)), tmp_path / "out", log=lines.append)
    out = tmp_path / "out"
    records = json.loads((out / "results.json").read_text())
    # the teacher is loaded, never trained: its records are its evaluation on each split
    teacher = [r for r in records if r["target"] == "skeleton"]
    assert {r["run"] for r in teacher} == {"teachers/skeleton"} and len(teacher) == 2
    assert not list(out.glob("runs/*/seed0/skeleton"))
    trained = {(r["split"], r["target"], r["method"]) for r in records if r["target"] == "imu"}
    # no labels: only the methods that learn without them; no baseline, no plain reference
    assert {m for s, _, m in trained if s == "ood_unlabelled"} == {"logit_kd", "pseudo_label"}
    assert {m for s, _, m in trained if s == "ood_labelled1"} == {
        "baseline",
        "plain",
        "dcat",
        "logit_kd",
        "pseudo_label",
    }
    digest = load_teacher(teacher_run).digest
    fingerprint = json.loads(next(out.glob("runs/ood_labelled1/seed0/imu/logit_kd_*/"
                                          "fingerprint.json")).read_text())  # fmt: skip
    assert fingerprint["source"] == {"modality": "skeleton", "teacher": digest}
    assert any(f"teacher of skeleton trained elsewhere: {teacher_run}" in line for line in lines)
    report = (out / "report.md").read_text()
    assert "## Label-efficiency curves" in report
    assert "Source skeleton (trained elsewhere)" in report
    assert "No labelled training sample at this point: no baseline" in report
    # the same teacher from its export: nothing to retrain
    from dcat.deploy.export import export_model

    exported = export_model(teacher_run, tmp_path / "export", log=lambda line: None)
    curve["modalities"]["skeleton"]["teacher"] = str(exported)
    again: list[str] = []
    run_experiment(load_config(_write(tmp_path, curve, "b.yaml")), out, log=again.append)
    assert not any(line.startswith("retraining") for line in again)
    assert json.loads((out / "results.json").read_text()) == records


def test_a_point_without_labels_needs_teachers_from_elsewhere(tmp_path) -> None:
    split = {"kind": "ood", "train_subjects": [1, 2], "val_subjects": [3], "test_subjects": [4],
             "labelled_subjects": [[], [1]]}  # fmt: skip
    with pytest.raises(DcatError, match=r"ood_unlabelled: a point without labelled training "
                                        r"samples has no teacher for \['skeleton'\]"):  # fmt: skip
        load_config(_write(tmp_path, {**TINY, "splits": [split]}))
    assert np.isfinite(MISSING_LOGIT)


USER_MODULE = '''
import torch
from torch import nn


class Net(nn.Module):
    """A user's own skeleton network: a convolution, keys and values, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d({channels}, 16, 3, padding=1)
        self.key, self.value = nn.Linear(16, 8), nn.Linear(16, 8)
        self.head = nn.Linear(16, {classes})

    def forward(self, x):
        h = self.conv(x).transpose(1, 2)
        pooled = h.mean(dim=1)
        return {{"logits": self.head(pooled), "keys": self.key(h), "values": self.value(h),
                "embedding": pooled}}


def build():
    return Net()
'''


@pytest.fixture
def user_teacher(teacher_run, tmp_path, monkeypatch) -> dict[str, str]:
    """A user's module, its weights and a card whose classes are the data's, reversed."""
    from safetensors.torch import save_file

    from dcat.io.card import ModelCard

    card = load_teacher(teacher_run).card
    channels, classes = card.input_shape[0], len(card.class_names)
    (tmp_path / "user_teacher.py").write_text(
        USER_MODULE.format(channels=channels, classes=classes)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("user_teacher")
    torch.manual_seed(0)
    net = module.build()
    save_file(net.state_dict(), str(tmp_path / "user.safetensors"))
    data = card.to_dict()
    data["class_names"] = list(reversed(card.class_names))
    data["architecture"] = {}
    ModelCard.from_dict(data).save(tmp_path / "user_card.json")
    return {"module": "user_teacher:build", "weights": str(tmp_path / "user.safetensors"),
            "card": str(tmp_path / "user_card.json")}  # fmt: skip


def test_a_users_module_is_a_teacher_with_its_classes_mapped(user_teacher, teacher_run) -> None:
    from dcat.training.elsewhere import UserTeacher, load_user_teacher

    teacher = load_user_teacher(
        user_teacher["module"], user_teacher["weights"], user_teacher["card"]
    )
    assert isinstance(teacher.net, UserTeacher)
    assert (teacher.net.num_classes, teacher.net.d_out, teacher.net.embedding_dim) == (27, 8, 16)
    data_classes = load_teacher(teacher_run).card.class_names
    net, missing = map_classes(teacher, data_classes, "here")
    assert missing == []
    x = torch.randn(2, *teacher.card.input_shape)
    raw = teacher.net.module(x)["logits"]
    torch.testing.assert_close(net.forward_all(x).logits, raw.flip(1))  # reversed classes
    keys, _, values = net.forward_all(x).kqv
    assert keys.shape == (2, x.shape[-1], 8) and values.shape == keys.shape
    with pytest.raises(DcatError, match="teacher factory 'nowhere:build': cannot import it"):
        load_user_teacher("nowhere:build", user_teacher["weights"], user_teacher["card"])


def test_an_experiment_learns_from_a_users_module(user_teacher, tmp_path) -> None:
    config = {
        **TINY, "methods": ["logit_kd", "rkd"], "lambdas": [],
        "modalities": {**TINY["modalities"],
                       "skeleton": {**TINY["modalities"]["skeleton"], "teacher": user_teacher}},
    }  # fmt: skip
    run_experiment(load_config(_write(tmp_path, config)), tmp_path / "out", log=lambda x: None)
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {r["method"] for r in records if r["target"] == "imu"} == {
        "baseline",
        "plain",
        "logit_kd",
        "rkd",
    }
    teacher = [r for r in records if r["target"] == "skeleton"]
    assert [r["run"] for r in teacher] == ["teachers/skeleton"]
    fingerprint = json.loads(next((tmp_path / "out").glob(
        "runs/ood/seed0/imu/logit_kd_*/fingerprint.json")).read_text())  # fmt: skip
    assert set(fingerprint["source"]) == {"modality", "teacher"}


def test_recordings_without_any_training_label_learn_from_a_teacher_alone(
    teacher_run, tmp_path
) -> None:
    """A data set whose training subjects are all unlabelled (validation and test labelled)."""
    from dcat.data import UNLABELLED
    from dcat.experiment.runner import load_dataset

    split = {"kind": "ood", "train_subjects": [1, 2], "val_subjects": [3], "test_subjects": [4]}
    with_teacher = {**TINY["modalities"]["skeleton"], "teacher": str(teacher_run)}
    config = {**TINY, "methods": ["dcat", "logit_kd"], "lambdas": [], "splits": [split]}
    data = load_dataset(load_config(_write(tmp_path, config)))
    data.labels = np.where(np.isin(data.subjects, [1, 2]), UNLABELLED, data.labels)
    refused = r"ood: its training part has no labelled sample, and the sources \['skeleton'\]"
    with pytest.raises(DcatError, match=refused):
        run_experiment(load_config(_write(tmp_path, config)), tmp_path / "a", data=data,
                       log=lambda line: None)  # fmt: skip
    config["modalities"] = {**TINY["modalities"], "skeleton": with_teacher}
    run_experiment(load_config(_write(tmp_path, config)), tmp_path / "b", data=data,
                   log=lambda line: None)  # fmt: skip
    records = json.loads((tmp_path / "b" / "results.json").read_text())
    assert {r["method"] for r in records if r["target"] == "imu"} == {"logit_kd"}
    only_dcat = {**config, "methods": ["dcat"]}
    with pytest.raises(DcatError, match="no method of the run learns without labels"):
        run_experiment(load_config(_write(tmp_path, only_dcat)), tmp_path / "c", data=data,
                       log=lambda line: None)  # fmt: skip
