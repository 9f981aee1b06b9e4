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


def _sections(seeds: int) -> str:
    from dcat.experiment.report import target_sections

    records = [
        {**r, "seed": seed, "val_f1": r["f1"], "pick": r["method"] == "dcat",
         "f1": r["f1"] + (0.01 * seed * (r["method"] == "dcat"))}
        for seed in range(seeds)
        for r in _records(methods=["baseline", "dcat"]) if r["seed"] == 0
    ]  # fmt: skip
    labels = {m: METHOD_LABELS[m] for m in ("baseline", "dcat")}
    verdicts = []
    lines = target_sections(
        records, "ood", [("skeleton", "imu")], 1.0, labels,
        verdict=lambda found: verdicts.append(found) or "VERDICT", num_classes=27,
    )  # fmt: skip
    return "\n".join(lines)


def test_two_seeds_give_no_p_value_and_say_why() -> None:
    text = _sections(2)
    # Δ is shown, a p-value or an interval nowhere; the verdict needs a test: not called
    assert "(Δ +0.055)" in text and "p=" not in text and "VERDICT" not in text
    assert "t-test p" not in text and "95 % CI" not in text and "Holm" not in text
    assert "| Method | Δ F1 | seeds |" in text and "| D-CAT | +0.055 ± 0.007 | 2 |" in text
    note = "2 seeds: too few for a test (no p-value or confidence interval below 3 seeds)."
    # under the method table, the statistics and the pick rules: every table a p would be in
    assert text.count(note) == 3
    table_end = text.index("\n\n", text.index("| F1-Score |"))
    assert text[table_end:].startswith(f"\n\n{note}\n")


def test_three_to_nine_seeds_keep_the_smoke_test_caveat_beside_every_p() -> None:
    text = _sections(3)
    assert "p=" in text and "| t-test p |" in text and "VERDICT" in text
    note = "3 seeds are a smoke test, not evidence (p-values from fewer than 10 seeds)."
    tables = [block for block in text.split("\n\n") if block.startswith("|")]
    with_p = [t for t in tables if "p=" in t or "t-test p" in t]
    assert len(with_p) == 3 and text.count(note) == 3
    for table in with_p:  # the caveat is the next line (after a verdict, if any) of each table
        after = text.split(table, 1)[1].lstrip("\n").removeprefix("VERDICT\n\n")
        assert after.startswith(note)
    assert "smoke test" not in _sections(10) and "p=" in _sections(10)


def test_a_weak_teacher_is_flagged_under_its_table() -> None:
    from dcat.experiment.report import target_sections

    # val F1 = test F1 here: skeleton's baseline 0.71, imu's 0.51 → imu is the weaker teacher
    records = [{**r, "val_f1": r["f1"]} for r in _records(methods=["baseline", "dcat"])]
    labels = {m: METHOD_LABELS[m] for m in ("baseline", "dcat")}
    pairs = [("skeleton", "imu"), ("imu", "skeleton")]
    text = "\n".join(target_sections(records, "ood", pairs, 1.0, labels, num_classes=27))
    line = (
        "**Warning:** source imu (val F1 0.510) is weaker than target skeleton (0.710): "
        "transfer from a weaker source rarely helps."
    )
    assert text.count("**Warning:**") == 1
    section = text.split("### target skeleton ← source imu")[1]
    table_end = section.index("\n\n", section.index("| F1-Score |"))
    assert section[table_end:].startswith(f"\n\n{line}\n")
    # without the class count (an older caller) nothing is checked
    assert "Warning" not in "\n".join(target_sections(records, "ood", pairs, 1.0, labels))
