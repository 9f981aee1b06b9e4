"""The report: the teacher's baseline in every table, one colour per method, honest titles."""

from __future__ import annotations

import pytest

from dcat.experiment.report import METHOD_LABELS, f1_figure, method_colours, method_table

pytest.importorskip("matplotlib")

METHODS = ["baseline", "dcat", "dcat_no_mcma", "logit_kd", "feature", "contrastive"]


def _records(split: str = "ood", methods=METHODS, targets=("imu", "skeleton")) -> list[dict]:
    records = []
    for seed in range(3):
        for target in targets:
            source = next(t for t in targets if t != target)
            for i, method in enumerate(methods):
                f1 = 0.5 + 0.05 * i + 0.01 * seed + (0.2 if target == "skeleton" else 0.0)
                records.append({
                    "split": split, "seed": seed, "target": target, "method": method,
                    "source": "" if method == "baseline" else source,
                    "lambda": None if method == "baseline" else 1.0,
                    "accuracy": f1, "precision": f1, "recall": f1, "f1": f1,
                })  # fmt: skip
    return records


def test_every_transfer_table_shows_the_sources_own_baseline() -> None:
    # only skeleton → imu is transferred, yet the skeleton baseline was trained: it is shown
    records = [r for r in _records() if r["target"] == "imu" or r["method"] == "baseline"]
    rows = method_table(records, "ood", "imu", "skeleton", 1.0)
    assert rows[0][:3] == ["Metric", "Baseline", "Source skeleton (its baseline)"]
    f1 = next(row for row in rows if row[0] == "F1-Score")
    assert f1[2] == "0.710 ± 0.010"  # the skeleton baseline's F1, without a Δ to the imu one
    assert "Δ" not in f1[2] and "Δ" in f1[3]
    # without a source (no transfers) there is no teacher column
    assert len(method_table(records, "ood", "imu", "", None)[0]) == 2


def test_one_colour_per_method_in_every_plot() -> None:
    colours = method_colours(list(METHOD_LABELS))
    assert len(set(colours.values())) == len(colours)  # no method shares the baseline's blue
    assert method_colours(["logit_kd"])["baseline"] == colours["baseline"]
    figures = {
        "all": f1_figure(_records(), "ood", 1.0),
        "few": f1_figure(_records(methods=["baseline", "contrastive"]), "ood", 1.0),
    }
    by_label = {}
    for figure in figures.values():
        (ax,) = figure.axes
        for bar, label in zip(ax.patches, _bar_labels(ax), strict=True):
            by_label.setdefault(label, set()).add(bar.get_facecolor())
    assert all(len(found) == 1 for found in by_label.values()), by_label


def _bar_labels(ax) -> list[str]:
    return [bar.get_gid() for bar in ax.patches]


def test_bars_leave_no_empty_slots() -> None:
    # imu has 6 models, skeleton only its baseline: skeleton gets one bar, centred on its tick
    records = [r for r in _records() if r["target"] == "imu" or r["method"] == "baseline"]
    (ax,) = f1_figure(records, "ood", 1.0).axes
    assert len(ax.patches) == 7
    skeleton = [p for p in ax.patches if p.get_x() + p.get_width() / 2 > 0.5]
    assert len(skeleton) == 1
    assert skeleton[0].get_x() + skeleton[0].get_width() / 2 == pytest.approx(1.0)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "Baseline" and "D-CAT (skeleton)" in labels
    assert len(labels) == len(set(labels)) == 6


def test_confusion_titles_say_the_matrices_are_summed_over_seeds(tmp_path) -> None:
    import json

    from dcat.experiment.report import confusion_figure

    records = _records(methods=["baseline", "dcat"], targets=("imu", "skeleton"))
    for r in records:
        r["run"] = f"runs/{r['target']}/{r['method']}/seed{r['seed']}"
        (tmp_path / r["run"]).mkdir(parents=True)
        matrix = {"test": {"confusion_matrix": [[3, 1], [0, 4]]}}
        (tmp_path / r["run"] / "metrics.json").write_text(json.dumps(matrix))
    figure = confusion_figure(tmp_path, records, "ood", "imu", "skeleton", 1.0, ["a", "b"])
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == [
        "Baseline: imu, OOD, summed over 3 seeds (rows normalised)",
        "D-CAT: imu, OOD, summed over 3 seeds (rows normalised)",
    ]
    one = [r for r in records if r["seed"] == 0]
    figure = confusion_figure(tmp_path, one, "ood", "imu", "skeleton", 1.0, ["a", "b"])
    assert figure.axes[0].get_title() == "Baseline: imu, OOD, 1 seed (rows normalised)"


def test_statistics_table_and_delta_plot_per_method() -> None:
    from scipy import stats

    from dcat.experiment.report import delta_figure, statistics_table, transfer_comparisons
    from dcat.experiment.statistics import holm

    records = _records(methods=["baseline", "dcat", "logit_kd"])
    for r in records:  # make the per-seed differences vary, as real runs do
        if r["method"] == "dcat":
            r["f1"] += 0.01 * r["seed"]
    found = transfer_comparisons(records, "ood", "imu", "skeleton", 1.0, METHOD_LABELS)
    rows = statistics_table(found)
    assert rows[0] == ["Method", "Δ F1", "95 % CI", "t-test p", "Wilcoxon p", "Holm p", "seeds"]
    dcat = next(row for row in rows if row[0] == "D-CAT")
    assert dcat[1] == "+0.060 ± 0.010" and dcat[6] == "3"
    base = [r["f1"] for r in records if r["target"] == "imu" and r["method"] == "baseline"]
    mine = [r["f1"] for r in records if r["target"] == "imu" and r["method"] == "dcat"]
    p = stats.ttest_rel(mine, base).pvalue
    assert dcat[3] == f"{p:.3f}"
    # logit KD's differences are all equal: no t-test, and Holm has one p-value to correct
    kd = next(row for row in rows if row[0] == "Logit KD")
    assert kd[3] == "n/a" and dcat[5] == f"{holm([p])[0]:.3f}"
    alone = transfer_comparisons(records, "ood", "imu", "", None, METHOD_LABELS)
    assert alone == {} and statistics_table(alone) is None  # a baseline alone
    (ax,) = delta_figure(found, METHOD_LABELS, "OOD: imu ← skeleton").axes
    assert ax.get_title() == "OOD: imu ← skeleton, per seed and mean (95 % CI)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["D-CAT", "Logit KD"]
    points = [c for c in ax.collections if len(c.get_offsets()) == 3]
    assert len(points) == 2  # every seed of every method is a visible point
    assert sorted(points[0].get_offsets()[:, 1].round(3).tolist()) == [0.05, 0.06, 0.07]
