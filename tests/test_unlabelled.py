"""Unlabelled training samples: the loss terms that skip them, the batches that mix them in at a
fixed ratio, and the engine's refusals (issue 28)."""

from __future__ import annotations

import json
import math

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dcat.data import UNLABELLED, PairedDataset
from dcat.data.mixing import MixedBatchSampler, steps_per_epoch
from dcat.errors import DcatError
from dcat.nn.labels import fill_unlabelled, labelled_cross_entropy
from dcat.nn.losses import mcma_mask
from dcat.nn.peer_losses import dkd_loss
from dcat.training.engine import TrainConfig, fit
from dcat.training.tasks import SourceSpec, TransferTask, UnimodalTask

from conftest import make_paired, small_net

FAST = {"batch_size": 8, "progress": False, "log_every_n_steps": 1, "logger": "none"}


# ------------------------------------------------------------------------------- the loss terms


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_labelled_cross_entropy_is_torchs_when_every_sample_is_labelled(smoothing) -> None:
    torch.manual_seed(0)
    logits, labels = torch.randn(16, 5), torch.randint(0, 5, (16,))
    expected = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    assert torch.equal(labelled_cross_entropy(logits, labels, label_smoothing=smoothing), expected)


def test_labelled_cross_entropy_averages_over_the_labelled_samples_only() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0], [1.0, 1.0]])
    labels = torch.tensor([0, UNLABELLED, 1, UNLABELLED])
    # hand-computed: −log softmax of the labelled rows' classes
    first = math.log(1 + math.exp(-2.0))
    third = math.log(1 + math.exp(10.0))
    value = labelled_cross_entropy(logits, labels)
    assert value.item() == pytest.approx((first + third) / 2, rel=1e-6)


def test_labelled_cross_entropy_without_labels_is_zero_with_zero_gradient() -> None:
    logits = torch.randn(4, 3, requires_grad=True)
    value = labelled_cross_entropy(logits, torch.full((4,), UNLABELLED), label_smoothing=0.1)
    value.backward()
    assert value.item() == 0.0
    assert logits.grad is not None and torch.equal(logits.grad, torch.zeros(4, 3))


def test_mcma_rules_on_unlabelled_samples() -> None:
    # probabilities of the source: row 0 sure of class 0, row 1 unsure
    logits = torch.log(torch.tensor([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.1, 0.8, 0.1]]))
    labels = torch.tensor([UNLABELLED, UNLABELLED, 1])
    assert mcma_mask(logits, labels).tolist() == [False, False, True]
    # confident: without a label, the source's top probability alone decides
    assert mcma_mask(logits, labels, confidence=0.7).tolist() == [True, False, True]
    assert mcma_mask(logits, labels, confidence=0.85).tolist() == [True, False, False]


def test_dkd_takes_the_sources_class_for_an_unlabelled_sample() -> None:
    torch.manual_seed(0)
    source, target = torch.randn(6, 4), torch.randn(6, 4)
    labels = torch.tensor([0, UNLABELLED, 2, UNLABELLED, 3, 1])
    filled = fill_unlabelled(labels, source)
    assert filled.tolist() == [0, int(source[1].argmax()), 2, int(source[3].argmax()), 3, 1]
    assert torch.equal(dkd_loss(source, target, labels), dkd_loss(source, target, filled))


# ------------------------------------------------------------------------- methods and their flag

# every registered method: whether it learns from unlabelled samples with its default options
UNLABELLED_FLAGS = {
    "dcat": False,  # MCMA's `correct` rule reads the label
    "logit_kd": True,
    "feature": True,
    "contrastive": True,
    "dkd": True,
    "rkd": True,
    "sp": True,
    "virtual": False,  # its virtual samples are labelled by the pair's class
    "pseudo_label": True,
}


def test_every_registered_method_declares_whether_it_learns_without_labels() -> None:
    from dcat.training.methods import get_method, list_methods

    assert set(UNLABELLED_FLAGS) == set(list_methods())
    for name, flag in UNLABELLED_FLAGS.items():
        cls = get_method(name)
        assert cls.learns_unlabelled(dict(cls.options)) is flag, name
    dcat = get_method("dcat")
    assert dcat.learns_unlabelled({"mcma": "confident"}) and dcat.learns_unlabelled(
        {"mcma": "none"}
    )


def _method_term(method: str, batch: dict, options: dict | None = None) -> torch.Tensor:
    from dcat.training.methods import get_method

    torch.manual_seed(0)
    source, target = small_net("skeleton"), small_net("imu")
    if get_method(method).source_network:
        spec = SourceSpec("src", source, modality="skeleton", method=method, options=options or {})
    else:
        spec = SourceSpec("src", None, modality="imu", method=method, options=options or {})
    task = TransferTask(target, "imu", [spec]).eval()  # batch norm per sample: rows independent
    return task(batch)[get_method(method).component]


def _rows(data: PairedDataset, idx: np.ndarray, labels: np.ndarray) -> dict:
    return {
        "inputs": {m: torch.from_numpy(np.asarray(a)[idx]) for m, a in data.inputs.items()},
        "label": torch.from_numpy(labels[idx]),
        "index": torch.arange(len(idx)),
    }


@pytest.mark.parametrize(
    ("method", "options"),
    # an untrained source is confident about nothing: pseudo-labels keep every sample here
    [(name, {"threshold": 0.0} if name == "pseudo_label" else None) for name in UNLABELLED_FLAGS]
    + [("dcat", {"mcma": "confident", "confidence": 0.3}), ("dcat", {"mcma": "none"})],
)
def test_each_method_sees_the_unlabelled_samples_only_when_it_can_learn_from_them(
    method, options
) -> None:
    data = make_paired(n=12)
    labels = data.labels.copy()
    hidden = np.arange(12) % 2 == 1
    labels[hidden] = UNLABELLED
    whole = _method_term(method, _rows(data, np.arange(12), labels), options)
    known = np.flatnonzero(~hidden)
    labelled_only = _method_term(method, _rows(data, known, labels), options)
    from dcat.training.methods import get_method

    cls = get_method(method)
    if cls.learns_unlabelled({**cls.options, **(options or {})}):
        assert not torch.allclose(whole, labelled_only), "the unlabelled rows were dropped"
    else:
        torch.testing.assert_close(whole, labelled_only, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------- mixed batches


def test_mixed_batches_hold_the_ratio_and_pass_once_over_the_labelled_samples() -> None:
    labels = np.array([0, 1, -1, 2, -1, -1, 0, 1, -1, -1, -1, 2, 0, -1])
    sampler = MixedBatchSampler(labels, batch_size=2, ratio=1.5, seed=3)
    batches = list(sampler)
    labelled = [i for b in batches for i in b if labels[i] != UNLABELLED]
    assert sorted(labelled) == sorted(np.flatnonzero(labels != UNLABELLED).tolist())
    assert len(batches) == len(sampler) == steps_per_epoch(7, 7, 2, 1.5) == 4
    for batch in batches[:-1]:
        assert sum(labels[i] != UNLABELLED for i in batch) == 2
        assert sum(labels[i] == UNLABELLED for i in batch) == 3  # round(1.5 · 2)
    assert sum(labels[i] != UNLABELLED for i in batches[-1]) == 1  # 7 = 3 · 2 + 1
    # within an epoch, unlabelled samples repeat only once all were drawn
    drawn = [i for b in batches for i in b if labels[i] == UNLABELLED]
    assert len(set(drawn[:7])) == 7
    # fixed by (seed, epoch): the same again, another order next epoch
    assert list(MixedBatchSampler(labels, 2, 1.5, seed=3)) == batches
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_mixed_batches_share_one_order_over_ranks_and_stand_alone_without_labels() -> None:
    labels = np.array([0, 1, 2, 0, 1, -1, -1, -1, -1])
    parts = [
        list(MixedBatchSampler(labels, 2, 1.0, seed=0, num_replicas=2, rank=r)) for r in (0, 1)
    ]
    assert len(parts[0]) == len(parts[1]) == 2  # ceil(ceil(5 / 2) / 2)
    seen = [i for part in parts for b in part for i in b if labels[i] != UNLABELLED]
    assert set(seen) == {0, 1, 2, 3, 4} and len(seen) == 6  # padded by one, as DDP pads
    alone = MixedBatchSampler(np.full(5, UNLABELLED), batch_size=4, ratio=0.5)
    assert len(alone) == 3 and sorted(i for b in alone for i in b) == [0, 1, 2, 3, 4]
    none = MixedBatchSampler(labels, batch_size=2, ratio=0.0)
    assert all(labels[i] != UNLABELLED for b in none for i in b)
    with pytest.raises(DcatError, match="rank 2"):
        MixedBatchSampler(labels, 2, rank=2)


# ------------------------------------------------------------------------------------ the engine


def _partly_labelled(hidden_labels: np.ndarray | None = None) -> tuple[PairedDataset, ...]:
    data = make_paired(n=48)
    train, val = data.subset(range(36)), data.subset(range(36, 48))
    labels = train.labels.copy()
    labels[np.arange(36) % 3 != 0] = UNLABELLED  # 12 labelled, 24 unlabelled
    partly = PairedDataset(
        train.inputs, labels, train.subjects, train.recordings, train.class_names
    )
    return partly, val, train


class _Steps(L.Callback):
    """Records the optimiser steps a fit took."""

    steps = -1

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.steps = trainer.global_step


def _fit_steps(*args, **kwargs) -> int:
    counter = _Steps()
    fit(*args, callbacks=[counter], **kwargs)
    return counter.steps


def test_every_arm_takes_the_same_steps_whatever_it_learns_from(tmp_path) -> None:
    partly, val, train = _partly_labelled()
    config = TrainConfig(max_epochs=2, **FAST)
    torch.manual_seed(0)
    task = UnimodalTask(small_net("imu"), "imu")
    steps = {"baseline": _fit_steps(task, partly, val, config, tmp_path / "baseline")}
    for method in ("logit_kd", "dcat", "pseudo_label"):
        torch.manual_seed(0)
        source = small_net("skeleton")
        spec = SourceSpec("skeleton", source, method=method)
        task = TransferTask(small_net("imu"), "imu", [spec])
        steps[method] = _fit_steps(task, partly, val, config, tmp_path / method)
        assert task.partly_labelled is (method != "dcat")
    # 12 labelled samples in batches of 8: 2 steps an epoch for every arm
    assert steps == {"baseline": 4, "logit_kd": 4, "dcat": 4, "pseudo_label": 4}
    # a fully labelled run of the same 36 samples takes more: the count is of labelled samples
    torch.manual_seed(0)
    task = UnimodalTask(small_net("imu"), "imu")
    assert _fit_steps(task, train, val, config, tmp_path / "all") == 10


def test_a_baseline_ignores_unlabelled_samples_entirely(tmp_path) -> None:
    partly, val, _ = _partly_labelled()
    labelled = partly.subset(np.flatnonzero(partly.labelled))
    config = TrainConfig(max_epochs=2, **FAST)
    runs = []
    for name, data in (("partly", partly), ("labelled", labelled)):
        torch.manual_seed(0)
        net = small_net("imu")
        fit(UnimodalTask(net, "imu"), data, val, config, tmp_path / name)
        runs.append(net.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_validation_and_test_samples_need_labels_and_nothing_is_written(tmp_path) -> None:
    partly, val, _ = _partly_labelled()
    config = TrainConfig(max_epochs=1, **FAST)
    task = UnimodalTask(small_net("imu"), "imu")
    with pytest.raises(DcatError, match=r"validation data has 24 samples without a label "
                                        r"\(the first: recording 'rec1'\)"):  # fmt: skip
        fit(task, val, partly, config, tmp_path / "a")
    with pytest.raises(DcatError, match="the test data has 24 samples without a label"):
        fit(task, val, val, config, tmp_path / "b", test=partly)
    assert not (tmp_path / "a" / "config.yaml").exists()
    assert not (tmp_path / "b" / "config.yaml").exists()


def test_no_labelled_training_sample_needs_methods_that_learn_without_labels(tmp_path) -> None:
    partly, val, _ = _partly_labelled()
    none = PairedDataset(
        partly.inputs, np.full(36, UNLABELLED), partly.subjects, partly.recordings,
        partly.class_names,
    )  # fmt: skip
    config = TrainConfig(max_epochs=1, **FAST)
    with pytest.raises(DcatError, match="no labelled sample, and cross-entropy alone"):
        fit(UnimodalTask(small_net("imu"), "imu"), none, val, config, tmp_path / "a")
    source = small_net("skeleton")
    mixed = [
        SourceSpec("s", source, "skeleton", method="logit_kd"),
        SourceSpec("t", source, "skeleton"),
    ]
    with pytest.raises(DcatError, match="no labelled sample, and dcat learns from labels only"):
        fit(TransferTask(small_net("imu"), "imu", mixed), none, val, config, tmp_path / "b")
    task = TransferTask(
        small_net("imu"), "imu", [SourceSpec("skeleton", source, method="logit_kd")]
    )
    # 36 unlabelled samples in batches of round(1 · 8)
    assert _fit_steps(task, none, val, config, tmp_path / "c", test=val) == 5
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["f1"] <= 1.0


def test_paired_dataset_accepts_unlabelled_samples_and_refuses_other_negatives() -> None:
    data = make_paired(n=6)
    labels = np.array([0, UNLABELLED, 2, 1, UNLABELLED, 0])
    partly = PairedDataset(data.inputs, labels, data.subjects, data.recordings, data.class_names)
    assert partly.labelled.tolist() == [True, False, True, True, False, True]
    assert partly.has_unlabelled and not data.has_unlabelled
    assert partly.subset([1, 2])[0]["label"].item() == UNLABELLED
    with pytest.raises(DcatError, match=r"or be -1 \(no label\), got \[-2, 1\]"):
        PairedDataset(data.inputs, labels - 1, data.subjects, data.recordings, data.class_names)


def test_dcat_methods_says_which_methods_learn_from_unlabelled_samples(capsys) -> None:
    from dcat.cli import main

    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    said = {}
    for line in lines:
        if not line.startswith(" "):
            name = line.split(":")[0]
        elif line.strip().startswith("unlabelled samples:"):
            said[name] = line.split(":", 1)[1].strip()
    assert said["logit_kd"] == said["pseudo_label"] == "learns from them"
    assert said["virtual"] == "not used (the labelled samples only)"
    assert said["dcat"].startswith("by its options (The confident and none rules need no label")


# ------------------------------------------------------------------- manifests and splits


def test_a_segmented_manifest_row_with_an_empty_label_is_unlabelled(tmp_path) -> None:
    from test_manifest import _rewrite, load_manifest, make_segmented

    manifest = make_segmented(tmp_path)
    _rewrite(manifest, edit=lambda rows: rows[1].__setitem__(2, ""))  # alice's t2: no label
    data = load_manifest(manifest)
    assert data.class_names == ["walk"]  # an empty cell names no class
    assert data.labels.tolist() == [0, UNLABELLED, 0]
    assert data.has_unlabelled and data.recordings[1] == "t2"


def test_a_span_without_a_label_gives_unlabelled_windows(tmp_path) -> None:
    from test_manifest import load_manifest, make_stream

    manifest = make_stream(tmp_path)
    labels = manifest.parent / "labels" / "r1.csv"
    lines = labels.read_text().splitlines()
    # r1's last 3 s (7.0 … 9.9 s) are known to be unlabelled: empty label cells
    edited = [line if float(line.split(",")[0]) < 7.0 else line.split(",")[0] + ","
              for line in lines[1:]]  # fmt: skip
    labels.write_text("\n".join([lines[0], *edited]) + "\n")
    data = load_manifest(manifest, window_s=2.0, stride_s=1.0)
    assert data.class_names == ["run", "sit", "walk"]
    # r1's windows start at 0 … 8 s: the one at 6 s holds 10 sit and 10 empty moments (a tie
    # goes to the label seen first: sit); those at 7 and 8 s hold empty ones only
    names = ["walk"] * 4 + ["sit"] * 3 + [None] * 2 + ["run"] * 3
    expected = [UNLABELLED if n is None else data.class_names.index(n) for n in names]
    assert data.labels.tolist() == expected


def test_unlabelled_samples_are_training_data_only_in_id_and_ood_splits() -> None:
    from dcat.data.splits import left_out, make_split

    labels = np.array([0, 1] * 12 + [UNLABELLED] * 8)
    subjects = np.array([1, 2, 3, 4] * 6 + [1, 2, 3, 4] * 2)
    split = make_split(labels, subjects, "id", seed=0, test_size=0.25, val_size=0.25)
    assert set(np.flatnonzero(labels == UNLABELLED)) <= set(split.train)
    assert (labels[split.val] != UNLABELLED).all() and (labels[split.test] != UNLABELLED).all()
    # the labelled samples' split is the one drawn without the unlabelled samples
    alone = make_split(labels[:24], subjects[:24], "id", seed=0, test_size=0.25, val_size=0.25)
    assert split.test.tolist() == alone.test.tolist() and split.val.tolist() == alone.val.tolist()
    ood = make_split(labels, subjects, "ood", seed=0, train_subjects=[1, 3], val_subjects=[2],
                     test_subjects=[4])  # fmt: skip
    train_unlabelled = np.flatnonzero((labels == UNLABELLED) & np.isin(subjects, [1, 3]))
    assert set(train_unlabelled) <= set(ood.train)
    assert (labels[ood.val] != UNLABELLED).all() and (labels[ood.test] != UNLABELLED).all()
    # a validation or test subject's unlabelled samples are in no part, said by no line
    assert left_out(ood, subjects) == {}
    assert len(ood.train) + len(ood.val) + len(ood.test) == 24 + 4
