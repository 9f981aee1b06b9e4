"""Label-efficiency points: a split's labelled share or labelled subjects, the rest of its
training part kept as unlabelled paired recordings (issue 28)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dcat.data import Split
from dcat.data.splits import labelled_share, make_split
from dcat.errors import DcatError
from dcat.experiment.config import load_config
from dcat.experiment.runner import load_dataset, run_experiment
from test_experiment import TINY, _write


def test_shares_are_nested_stratified_by_class_and_subject_and_fixed_by_the_seed() -> None:
    labels = np.repeat(np.arange(3), 12)
    subjects = np.tile(np.repeat([1, 2, 3], 4), 3)
    train = np.arange(36)
    sets = {f: set(labelled_share(labels, subjects, train, f, seed=5)) for f in (0.1, 0.25, 0.5)}
    assert sets[0.1] <= sets[0.25] <= sets[0.5]
    for fraction, kept in sets.items():
        kept_labels = labels[sorted(kept)]
        per_class = max(1, round(fraction * 12))
        assert np.bincount(kept_labels, minlength=3).tolist() == [per_class] * 3
    # in turns over subjects: at half, each class has 2 of every subject's 4 samples
    half = sorted(sets[0.5])
    assert all(
        np.sum((labels[half] == c) & (subjects[half] == s)) == 2
        for c in range(3)
        for s in (1, 2, 3)
    )
    assert labelled_share(labels, subjects, train, 0.25, seed=5).tolist() == sorted(sets[0.25])
    assert labelled_share(labels, subjects, train, 0.25, seed=6).tolist() != sorted(sets[0.25])
    assert labelled_share(labels, subjects, train, 0.0, seed=5).size == 0
    assert labelled_share(labels, subjects, train, 1.0, seed=5).tolist() == train.tolist()
    with pytest.raises(DcatError, match=r"a labelled share must be in \[0, 1\], got 1.5"):
        labelled_share(labels, subjects, train, 1.5, seed=5)


def test_a_split_with_hidden_labels_is_saved_and_read_back(tmp_path) -> None:
    labels, subjects = np.repeat(np.arange(2), 10), np.tile(np.arange(5), 4)
    split = make_split(labels, subjects, "id", seed=1, test_size=0.2, val_size=0.25)
    kept = labelled_share(labels, subjects, split.train, 0.5, seed=1)
    point = split.hiding(kept, "id_labels0.5")
    assert point.label == "id_labels0.5" and split.label == "id"
    assert sorted(set(point.hidden) | set(kept)) == point.train.tolist()
    point.save(tmp_path / "s.json", subjects)
    back = Split.load(tmp_path / "s.json")
    assert back.name == "id_labels0.5" and back.hidden.tolist() == point.hidden.tolist()
    assert back.train.tolist() == point.train.tolist()
    with pytest.raises(DcatError, match="are not training samples"):
        split.hiding(split.test[:1], "x")


def test_curves_expand_into_named_points_and_are_checked(tmp_path) -> None:
    config = load_config(_write(tmp_path, {**TINY, "splits": [
        {"kind": "ood", "train_subjects": [1, 2, 3], "test_subjects": [4],
         "label_fractions": [0.25, 1.0]},
        {"kind": "ood", "train_subjects": [1, 2], "val_subjects": [3], "test_subjects": [4],
         "labelled_subjects": [[1], [1, 2]]},
    ]}))  # fmt: skip
    names = [s.label for s in config.splits]
    assert names == ["ood_share0.25", "ood_share1", "ood_labelled1", "ood_labelled1+2"]
    assert [s.labelled for s in config.splits] == [0.25, 1.0, [1], [1, 2]]
    assert all(s.label_fractions is None and s.labelled_subjects is None for s in config.splits)
    # the expanded form is a configuration too: written out and read back, the same points
    again = load_config(_write(tmp_path, {**TINY, "splits": config.to_dict()["splits"]}, "b.yaml"))
    assert [s.label for s in again.splits] == names
    with pytest.raises(DcatError, match="two splits are named 'ood_share1'"):
        load_config(_write(tmp_path, {**TINY, "splits": [
            {"kind": "ood", "train_subjects": [1, 2, 3], "label_fractions": [1.0]},
            {"kind": "ood", "train_subjects": [1, 2], "label_fractions": [1.0]},
        ]}))  # fmt: skip
    with pytest.raises(DcatError, match="give one of label_fractions, labelled_subjects"):
        load_config(
            _write(
                tmp_path,
                {
                    **TINY,
                    "splits": [
                        {"kind": "ood", "label_fractions": [0.5], "labelled_subjects": [[1]]}
                    ],
                },
            )
        )
    with pytest.raises(DcatError, match="labelled subjects apply to OOD splits"):
        load_config(
            _write(tmp_path, {**TINY, "splits": [{"kind": "id", "labelled_subjects": [[1]]}]})
        )
    for point in ([[]], [[1]]), ([0.0], None):
        subjects, shares = point if isinstance(point[0][0], list) else (None, point[0])
        split = {"kind": "ood", "train_subjects": [1, 2, 3]}
        split |= {"labelled_subjects": subjects} if subjects else {"label_fractions": shares}
        with pytest.raises(DcatError, match="a point without labelled training samples has no "
                                            r"teacher for \[.skeleton.\]"):  # fmt: skip
            load_config(_write(tmp_path, {**TINY, "splits": [split]}))


def _models(folder, split: str) -> dict[str, dict[str, torch.Tensor]]:
    runs = sorted((folder / "runs" / split).rglob("best.ckpt"))
    return {
        str(p.relative_to(folder)): torch.load(p, weights_only=True)["state_dict"] for p in runs
    }


def test_a_share_point_keeps_the_labels_of_its_nested_subset(tmp_path) -> None:
    curve = {**TINY, "methods": ["logit_kd"], "lambdas": [], "reference": False,
             "splits": [{"kind": "ood", "train_subjects": [1, 2, 3], "test_subjects": [4],
                         "label_fractions": [0.5, 1.0]}]}  # fmt: skip
    config = load_config(_write(tmp_path, curve))
    run_experiment(config, tmp_path / "a", log=lambda line: None)
    records = json.loads((tmp_path / "a" / "results.json").read_text())
    assert {r["split"] for r in records} == {"ood_share0.5", "ood_share1"}
    report = (tmp_path / "a" / "report.md").read_text()
    assert "## Out-of-distribution (OOD): subject-disjoint split, ood_share0.5" in report
    assert "## Label-efficiency curves" in report and "### ood: target imu" in report
    assert (tmp_path / "a" / "curve_ood_imu.png").is_file()
    half = Split.load(tmp_path / "a" / "splits" / "ood_share0.5_seed0.json")
    full = Split.load(tmp_path / "a" / "splits" / "ood_share1_seed0.json")
    assert full.hidden.size == 0 and half.train.tolist() == full.train.tolist()
    data = load_dataset(config)
    kept = np.setdiff1d(half.train, half.hidden)
    expected = labelled_share(data.labels, data.subjects, half.train, 0.5, seed=0)
    assert kept.tolist() == expected.tolist()
    # the labels it keeps are read: at the full share every model differs
    for run, state in _models(tmp_path / "a", "ood_share0.5").items():
        other = _models(tmp_path / "a", "ood_share1")[run.replace("share0.5", "share1")]
        assert not all(torch.equal(v, other[k]) for k, v in state.items()), run


def test_a_point_never_reads_a_hidden_label(tmp_path) -> None:
    """Change every label of the unlabelled subject: every model is bit-identical."""
    curve = {**TINY, "methods": ["logit_kd", "pseudo_label"], "lambdas": [], "reference": True,
             "splits": [{"kind": "ood", "train_subjects": [1, 2], "val_subjects": [3],
                         "test_subjects": [4], "labelled_subjects": [[1]]}]}  # fmt: skip
    config = load_config(_write(tmp_path, curve))
    run_experiment(config, tmp_path / "a", log=lambda line: None)
    point = Split.load(tmp_path / "a" / "splits" / "ood_labelled1_seed0.json")
    data = load_dataset(config)
    assert np.unique(data.subjects[point.hidden]).tolist() == [2]  # UTD-MHAD ids are names
    changed = data.labels.copy()
    changed[point.hidden] = (changed[point.hidden] + 1) % data.num_classes
    data.labels = changed
    run_experiment(config, tmp_path / "b", data=data, log=lambda line: None)
    first, second = (
        _models(tmp_path / "a", "ood_labelled1"),
        _models(tmp_path / "b", "ood_labelled1"),
    )
    assert len(first) == 5 and set(first) == set(second)  # skeleton, imu, plain, 2 methods
    for run, state in first.items():
        assert all(torch.equal(state[k], second[run][k]) for k in state), run


# ---------------------------------------------------------------------------------- the report


def _records() -> list[dict]:
    """Two points, 4 seeds: baseline and plain alternate as the best on validation; the pick is
    logit KD, ahead by a known amount."""
    rng = np.random.default_rng(0)
    out = []
    for split, gain in (("ood_share0.25", 0.08), ("ood_share1", 0.01)):
        for seed in range(4):
            base, plain = 0.6 + 0.01 * seed, 0.62 + 0.005 * seed
            val_base, val_plain = (0.7, 0.6) if seed % 2 else (0.6, 0.7)
            best = base if seed % 2 else plain
            kd = best + gain + 0.01 * rng.standard_normal()
            for method, f1, val, source in (
                ("baseline", base, val_base, ""), ("plain", plain, val_plain, ""),
                ("logit_kd", kd, 0.9, "skeleton"),
            ):  # fmt: skip
                lam = 1.0 if source else None
                out.append({"split": split, "seed": seed, "target": "imu", "method": method,
                            "source": source, "lambda": lam, "f1": f1, "val_f1": val,
                            "refit": False, "pick": method == "logit_kd"})  # fmt: skip
    return out


def test_the_curve_table_pairs_the_pick_with_the_best_model_without_a_source() -> None:
    from scipy import stats

    from dcat.experiment.curves import Curve, best_without_source, curve_table, mean_interval
    from dcat.experiment.statistics import holm

    records = _records()
    chosen = best_without_source(records, "ood_share0.25", "imu")
    assert [chosen[s]["method"] for s in range(4)] == ["plain", "baseline", "plain", "baseline"]
    curve = Curve("ood", ("ood_share0.25", "ood_share1"), ("25 %", "100 %"))
    table = curve_table(records, curve, "imu")
    assert table is not None and [row[0] for row in table[1:]] == ["25 %", "100 %"]
    raw = []
    for row, split in zip(table[1:], curve.splits, strict=True):
        pick = [r["f1"] for r in records if r["split"] == split and r["pick"]]
        best = [best_without_source(records, split, "imu")[s]["f1"] for s in range(4)]
        d = np.subtract(pick, best)
        assert row[3] == f"{d.mean():+.3f}"
        assert row[5] == f"{stats.ttest_rel(pick, best).pvalue:.3g}"
        assert row[6] == f"{stats.wilcoxon(d).pvalue:.3g}"
        raw.append(stats.ttest_rel(pick, best).pvalue)
        assert row[-1] == "4"
    assert [row[7] for row in table[1:]] == [f"{p:.3g}" for p in holm(raw)]
    mean, half = mean_interval([0.6, 0.7, 0.8])
    assert mean == pytest.approx(0.7)
    assert half == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3))


def test_the_report_draws_each_curve_and_names_the_label_only_methods(tmp_path) -> None:
    from dcat.experiment.curves import curve_lines, curves

    config = load_config(_write(tmp_path, {**TINY, "methods": ["dcat", "logit_kd"],
                                           "lambdas": [], "splits": [
        {"kind": "ood", "train_subjects": [1, 2, 3], "test_subjects": [4],
         "label_fractions": [0.25, 1.0]}]}))  # fmt: skip
    assert [(c.name, c.splits, c.ticks) for c in curves(config)] == [
        ("ood", ("ood_share0.25", "ood_share1"), ("25 %", "100 %"))
    ]
    lines = curve_lines(_records(), config, {"dcat": "D-CAT"}, tmp_path)
    text = "\n".join(lines)
    assert (
        "Learn from the labelled samples only (the unlabelled ones never reach them): D-CAT."
        in text
    )
    assert "![label-efficiency curve](curve_ood_imu.png)" in text
    assert (tmp_path / "curve_ood_imu.png").stat().st_size > 1000
    assert "| 25 % |" in text and "4 seeds are a smoke test" in text
    assert curve_lines(_records(), load_config(_write(tmp_path, TINY)), {}) == []


def test_a_point_without_labels_is_held_against_the_first_points_bar() -> None:
    from scipy import stats

    from dcat.experiment.curves import Curve, best_without_source, curve_table

    records = _records()
    alone = [0.55, 0.58, 0.6, 0.57]
    records += [{"split": "ood_unlabelled", "seed": s, "target": "imu", "method": "logit_kd",
                 "source": "skeleton", "lambda": 1.0, "f1": f1, "val_f1": 0.5, "refit": False,
                 "pick": True} for s, f1 in enumerate(alone)]  # fmt: skip
    curve = Curve(
        "ood", ("ood_unlabelled", "ood_share0.25", "ood_share1"), ("none", "25 %", "100 %")
    )
    table = curve_table(records, curve, "imu")
    assert table is not None and [row[0] for row in table[1:]] == ["none", "25 %", "100 %"]
    bar = [best_without_source(records, "ood_share0.25", "imu")[s]["f1"] for s in range(4)]
    assert table[1][1] == f"{np.mean(bar):.3f} (at 25 %)"
    assert table[1][3] == f"{np.mean(np.subtract(alone, bar)):+.3f}"
    assert table[1][5] == f"{stats.ttest_rel(alone, bar).pvalue:.3g}"
