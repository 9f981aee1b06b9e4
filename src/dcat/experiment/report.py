"""Tables (Markdown) and plots (PNG) from an experiment's records.

* Per split kind, a table shaped like the paper's Tables II (ID) and III (OOD): per target and
  source, one row per metric, one column per method, ``mean ± std`` over seeds; each transfer
  cell adds the paired difference to the baseline of the same split and seed and the p-value of
  a paired t-test over seeds (scipy); below 3 seeds no p-value or CI anywhere, and a line says
  why; below 10, a "smoke test" caveat follows every table of p-values
  (:func:`dcat.experiment.statistics.seed_caveat`).
* Under each transfer's table, a warning when its source's baseline is at chance or weaker than
  the target's on validation (:mod:`dcat.experiment.teachers`).
* Per target, the baseline and the dcat pick against the plain reference (no attention, no
  transfer: what a user would train without dcat).
* The λ sweep, shaped like Table IV, with the validation F1 it is chosen by.
* Plots: macro-F1 per method with standard-deviation error bars, and the confusion matrices of
  the baseline and D-CAT targets (summed over seeds).
* For a split run as a label-efficiency curve, its plot and the pick's paired Δ against the
  best model without a source at each point (:mod:`dcat.experiment.curves`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dcat.experiment.curves import curve_lines
from dcat.experiment.pick import PICK_RULES, mark_picks
from dcat.experiment.plan import method_labels
from dcat.experiment.statistics import (
    MIN_TEST_SEEDS,
    PairedComparison,
    compare,
    compare_all,
    holm,
    seed_caveat,
)
from dcat.experiment.teachers import split_val_samples, teacher_lines
from dcat.io.atomic import write_atomic
from dcat.training.methods import method_names, resolve_method
from dcat.training.run_folder import RunFolder

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "METHOD_LABELS",
    "METRICS",
    "confusion_figure",
    "delta_figure",
    "f1_figure",
    "format_table",
    "method_colours",
    "method_table",
    "pick_counts",
    "statistics_table",
    "target_sections",
    "transfer_comparisons",
    "write_report",
]

METRICS = [
    ("accuracy", "Accuracy"),
    ("recall", "Recall"),
    ("precision", "Precision"),
    ("f1", "F1-Score"),
]  # the paper's row order


def _registry_labels() -> dict[str, str]:
    """Tag → label of every registered method's default variant and of the old aliases, in
    registry order (the report's column order)."""
    labels = {"baseline": "Baseline", "plain": "Plain reference"}
    for name in method_names():
        variant = resolve_method(name)
        labels[variant.tag] = variant.label
    return labels


METHOD_LABELS = _registry_labels()
"""Report label of each method tag a configuration names without options."""
SPLIT_TITLES = {
    "id": "In-distribution (ID): stratified random split, {group}s shared",
    "ood": "Out-of-distribution (OOD): {group}-disjoint split",
}
"""Section title of each split kind; ``{group}`` is what the data's subject ids stand for
(:attr:`dcat.data.PairedDataset.group`: ``subject``, a manifest's ``session`` column, ...)."""


def _fmt(values: Sequence[float]) -> str:
    if len(values) > 1:
        return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
    return f"{np.mean(values):.3f}"


def _fmt_p(p: float) -> str:
    return "n/a" if np.isnan(p) else (f"{p:.3f}" if p >= 0.001 else "<0.001")


_TEACHER = "source baseline"
_SINGLE = ("baseline", "plain")  # models of the target alone
_PICK = "pick"  # the model of best validation F1 per seed (dcat.experiment.pick)


def _title(labels: Mapping[str, str], method: str) -> str:
    return "dcat pick" if method == _PICK else labels.get(method, method)


def pick_counts(
    records: list[dict[str, Any]], split: str, target: str, labels: Mapping[str, str]
) -> str | None:
    """``"D-CAT (skeleton, λ=1) 2, Baseline 1"``: how often each model was the pick, or ``None``
    when no record is marked."""
    counts: dict[str, int] = {}
    for r in _picks(records, split, target).values():
        name = labels.get(r["method"], r["method"])
        if r["method"] not in _SINGLE:
            lam = f", λ={r['lambda']:g}" if r["lambda"] is not None else ""
            name += f" ({r['source']}{lam})"
        counts[name] = counts.get(name, 0) + 1
    if not counts:
        return None
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda x: -x[1]))


def _by_seed(
    records: list[dict[str, Any]],
    split: str,
    target: str,
    method: str,
    source: str = "",
    weight: float | None = None,
) -> dict[int, dict[str, Any]]:
    """Seed → record of one model kind (a baseline or the plain reference, or a method from
    ``source`` at λ; a transfer whose sources have λs of their own matches any λ, and a method
    trained at one other λ only, e.g. a source that sets its own, is shown at that λ)."""
    rows = [
        r
        for r in records
        if r["split"] == split
        and r["target"] == target
        and r["method"] == method
        and not r.get("refit")
        and (method in _SINGLE or r["source"] == source)
    ]
    if method not in _SINGLE:
        shown = _shown_lambda({r["lambda"] for r in rows}, weight)
        rows = [r for r in rows if r["lambda"] in (shown, None)]
    return {r["seed"]: r for r in rows}


def _shown_lambda(lambdas: set[float | None], weight: float | None) -> float | None:
    """The λ the main tables show of one method and source: the experiment's ``weight``, or the
    only λ it was trained at (the λ sweep of D-CAT has its own table)."""
    given = {lam for lam in lambdas if lam is not None}
    if weight in given or len(given) != 1:
        return weight
    return given.pop()


def _picks(records: list[dict[str, Any]], split: str, target: str) -> dict[int, dict[str, Any]]:
    """Seed → the record of that seed's pick for ``target`` (:mod:`dcat.experiment.pick`)."""
    return {
        r["seed"]: r
        for r in records
        if r["split"] == split and r["target"] == target and r.get("pick")
    }


def transfer_comparisons(
    records: list[dict[str, Any]],
    split: str,
    target: str,
    source: str,
    weight: float | None,
    labels: Mapping[str, str],
    metric: str = "f1",
) -> dict[str, PairedComparison]:
    """Method → its paired comparison (:mod:`dcat.experiment.statistics`) with the target's
    baseline, Holm-corrected across the methods; empty without a baseline or a method."""
    base = {s: r[metric] for s, r in _by_seed(records, split, target, "baseline").items()}
    methods = {
        m: {s: r[metric] for s, r in _by_seed(records, split, target, m, source, weight).items()}
        for m in labels
        if m not in _SINGLE
    }
    methods = {m: v for m, v in methods.items() if v}
    picks = {seed: r[metric] for seed, r in _picks(records, split, target).items()}
    if picks and methods:
        methods[_PICK] = picks
    return compare_all(methods, base) if base and methods else {}


def reference_comparisons(
    records: list[dict[str, Any]], split: str, target: str, metric: str = "f1"
) -> dict[str, PairedComparison]:
    """The baseline and the pick, each paired with the plain reference (encoder → pool →
    head, no attention, no transfer: the model a user would train without dcat), Holm across
    the two; empty without a plain reference."""
    plain = {s: r[metric] for s, r in _by_seed(records, split, target, "plain").items()}
    found = {
        "baseline": {s: r[metric] for s, r in _by_seed(records, split, target, "baseline").items()}
    }
    found[_PICK] = {seed: r[metric] for seed, r in _picks(records, split, target).items()}
    found = {m: v for m, v in found.items() if v}
    return compare_all(found, plain) if plain and found else {}


def pick_hits(records: list[dict[str, Any]], split: str, target: str) -> tuple[int, int]:
    """``(k, n)``: in ``k`` of ``n`` seeds the pick (chosen on validation) was also a model of
    best test F1 among the target's models. For the report only: it never chooses anything."""
    hits = 0
    picks = _picks(records, split, target)
    for seed, pick in picks.items():
        rivals = [
            r["f1"]
            for r in records
            if r["split"] == split and r["target"] == target and r["seed"] == seed
            and not r.get("refit")
        ]  # fmt: skip
        hits += pick["f1"] >= max(rivals)
    return hits, len(picks)


def selection_rows(
    records: list[dict[str, Any]], split: str, target: str, rule: str
) -> list[list[str]] | None:
    """Both pick rules (:data:`dcat.experiment.pick.PICK_RULES`) side by side for one target,
    from the validation F1 of the trained models: per rule the picks' paired Δ test F1 to the
    baseline and how often the pick was also a model of best test F1. Reported only: the run
    used ``rule``. ``None`` with fewer than 2 seeds (the rules then agree); below 3 seeds
    without the CI and p columns."""
    rows = [r for r in records if r["split"] == split and r["target"] == target]
    base = {s: r["f1"] for s, r in _by_seed(records, split, target, "baseline").items()}
    if len(base) < 2:
        return None
    tested = len(base) >= MIN_TEST_SEEDS  # fewer: no interval, no p-value
    tests = ["95 % CI", "t-test p"] if tested else []
    out = [["Pick rule", "Δ F1 vs baseline", *tests, "test-best picks"]]
    for name in PICK_RULES:
        marked = mark_picks([r for r in rows if not r.get("refit")], name)
        picks = _picks(marked, split, target)
        c = compare({s: r["f1"] for s, r in picks.items()}, base)
        hits, seeds = pick_hits(marked, split, target)
        interval = "n/a" if np.isnan(c.ci_low) else f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]"
        used = " (used)" if name == rule else ""
        cells = [interval, _fmt_p(c.p_t)] if tested else []
        out.append([f"{name}{used}", f"{c.mean:+.3f}", *cells, f"{hits} of {seeds}"])
    return out


def refit_rows(
    records: list[dict[str, Any]], split: str, target: str, refit_sources: bool = False
) -> tuple[list[list[str]], dict[str, PairedComparison]] | None:
    """The refits (``refit: true``) of the baseline, the plain reference and the pick of one
    target: a table of test F1 and accuracy, and the pick's paired comparisons with the two
    refit references; ``None`` without refits. With ``refit_sources`` (the experiment's), the
    refitted teachers the picks' refits learned from are columns too."""
    refits = [
        r for r in records if r.get("refit") and r["split"] == split and r["target"] == target
    ]
    if not refits:
        return None
    keys = ("method", "source", "lambda")
    by_model = {(r["seed"], *(r[k] for k in keys)): r for r in refits}
    columns = {
        "baseline": {r["seed"]: r for r in refits if r["method"] == "baseline"},
        "plain": {r["seed"]: r for r in refits if r["method"] == "plain"},
        _PICK: {
            seed: by_model[seed, *(p[k] for k in keys)]
            for seed, p in _picks(records, split, target).items()
            if (seed, *(p[k] for k in keys)) in by_model
        },
    }
    columns = {m: runs for m, runs in columns.items() if runs}
    titles = {"baseline": "Baseline (refit)", "plain": "Plain reference (refit)",
              _PICK: "dcat pick (refit)"}  # fmt: skip
    teachers = _refit_sources(records, split, target) if refit_sources else {}
    for modality, runs in teachers.items():
        columns[modality], titles[modality] = runs, f"Source {modality} (refit)"
    rows = [["Metric", *(titles[m] for m in columns)]]
    for metric, label in (("accuracy", "Accuracy"), ("f1", "F1-Score")):
        rows.append(
            [label, *(_fmt([r[metric] for r in runs.values()]) for runs in columns.values())]
        )
    found: dict[str, PairedComparison] = {}
    pick = {s: r["f1"] for s, r in columns.get(_PICK, {}).items()}
    for reference in ("baseline", "plain"):
        base = {s: r["f1"] for s, r in columns.get(reference, {}).items()}
        if pick and base:
            found[f"pick vs {reference}"] = compare(pick, base)
    adjusted = holm([c.p_t for c in found.values()])  # two tests of one pick
    return rows, {
        k: replace(c, p_holm=p) for (k, c), p in zip(found.items(), adjusted, strict=True)
    }


def _refit_sources(
    records: list[dict[str, Any]], split: str, target: str
) -> dict[str, dict[int, dict[str, Any]]]:
    """Source modality → seed → the refit of its baseline, for the sources the picks of
    ``target`` learn from (for an experiment with ``refit_sources``; a source read only as
    samples has no baseline, so no entry)."""
    picked = {m for p in _picks(records, split, target).values() for m in p["source"].split("+")}
    return {
        modality: runs
        for modality in sorted(picked - {"", target})
        if (runs := {
            r["seed"]: r for r in records
            if r.get("refit") and r["split"] == split and r["target"] == modality
            and r["method"] == "baseline"
        })
    }  # fmt: skip


def statistics_table(
    found: Mapping[str, PairedComparison], labels: Mapping[str, str] = METHOD_LABELS
) -> list[list[str]] | None:
    """Rows of the paired comparisons of :func:`transfer_comparisons`, or ``None`` without any.

    Columns: Δ mean ± std over seeds, its bootstrap 95 % CI, the paired t-test and Wilcoxon
    p-values, and the t-test p after Holm's correction across the methods of this target; the
    CI and p columns only when some comparison has 3 seeds or more (:func:`_seeds`).
    """
    if not found:
        return None
    tested = _seeds(found) >= MIN_TEST_SEEDS
    tests = ["95 % CI", "t-test p", "Wilcoxon p", "Holm p"] if tested else []
    rows = [["Method", "Δ F1", *tests, "seeds"]]
    for method, c in found.items():
        spread = f" ± {c.std:.3f}" if not np.isnan(c.std) else ""
        interval = "n/a" if np.isnan(c.ci_low) else f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]"
        cells = [interval, *(_fmt_p(p) for p in (c.p_t, c.p_wilcoxon, c.p_holm))]
        rows.append([
            _title(labels, method), f"{c.mean:+.3f}{spread}", *(cells if tested else []),
            str(len(c.seeds)),
        ])  # fmt: skip
    return rows


def _seeds(found: Mapping[str, PairedComparison]) -> int:
    """The most seeds any of the comparisons pairs (0 without one): what the caveat names."""
    return max((len(c.seeds) for c in found.values()), default=0)


def _caveat(seeds: int) -> list[str]:
    """The seed-count caveat beside a table of p-values, as report lines (none from enough)."""
    note = seed_caveat(seeds)
    return [note, ""] if note else []


def delta_figure(
    found: Mapping[str, PairedComparison], labels: Mapping[str, str], title: str
) -> Figure | None:
    """Paired Δ test F1 to the baseline per method (:func:`transfer_comparisons`): every seed
    a point, the mean with its bootstrap 95 % CI; the answer to "did transfer help?". ``None``
    without a comparison."""
    if not found:
        return None
    colours = method_colours(list(labels))
    fig = _figure(figsize=(max(5, 1.1 * len(found) + 2), 3.6))
    ax = fig.subplots()
    ax.axhline(0.0, color="black", linewidth=0.8)
    for x, (method, c) in enumerate(found.items()):
        jitter = np.linspace(-0.12, 0.12, len(c.differences)) if len(c.differences) > 1 else [0]
        colour = colours.get(method, "black")  # the pick has no colour of its own
        ax.scatter(x + np.asarray(jitter), c.differences, s=14, color=colour, alpha=0.6)
        low, high = (c.ci_low, c.ci_high) if not np.isnan(c.ci_low) else (c.mean, c.mean)
        ax.errorbar(x, c.mean, yerr=[[c.mean - low], [high - c.mean]], fmt="D", color="black",
                    capsize=4)  # fmt: skip
    ax.set_xticks(
        range(len(found)), [_title(labels, m) for m in found], rotation=20, fontsize="small"
    )
    ax.set_ylabel("Δ macro F1 vs baseline")
    interval = any(not np.isnan(c.ci_low) for c in found.values())
    ax.set_title(f"{title}, per seed and mean" + (" (95 % CI)" if interval else ""))
    fig.tight_layout()
    return fig


def method_table(
    records: list[dict[str, Any]],
    split: str,
    target: str,
    source: str,
    weight: float | None,
    labels: Mapping[str, str] | None = None,
) -> list[list[str]]:
    """Rows (metric, then one cell per method) for one target and source in one split.

    The columns: the target's baseline, the source's own baseline (the teacher, when
    ``source`` is given and its baseline was trained), then each method. ``labels`` maps method
    tags to column labels, in column order (default :data:`METHOD_LABELS`); records of other
    tags are left out.
    """
    labels = METHOD_LABELS if labels is None else labels
    base = _by_seed(records, split, target, "baseline")
    # a point without labels has no baseline: no column, no Δ
    columns: list[tuple[str, dict[int, dict]]] = [("baseline", base)] if base else []
    plain = _by_seed(records, split, target, "plain")
    if plain:
        columns.append(("plain", plain))
    teacher = _by_seed(records, split, source, "baseline") if source else {}
    if teacher:  # the source's own baseline, so the teacher's quality is always in view
        columns.append((_TEACHER, teacher))
    for method in labels:
        if method in _SINGLE:
            continue
        runs = _by_seed(records, split, target, method, source, weight)
        if runs:
            columns.append((method, runs))
    picks = _picks(records, split, target)
    if picks:
        columns.append((_PICK, picks))
    titles = {
        **METHOD_LABELS,
        **labels,
        _TEACHER: f"Source {source} ({_teacher_kind(teacher)})",
        _PICK: "dcat pick",
    }
    rows = [["Metric", *(titles[m] for m, _ in columns)]]
    for metric, label in METRICS:
        row = [label]
        for method, runs in columns:
            values = {seed: r[metric] for seed, r in runs.items()}
            cell = _fmt(list(values.values()))
            if method not in (*_SINGLE, _TEACHER) and base:
                c = compare(values, {s: r[metric] for s, r in base.items()}, bootstrap=False)
                test = f", p={_fmt_p(c.p_t)}" if len(c.seeds) >= MIN_TEST_SEEDS else ""
                cell += f" (Δ {c.mean:+.3f}{test})"
            row.append(cell)
        rows.append(row)
    return rows


def _teacher_kind(runs: Mapping[int, Mapping[str, Any]]) -> str:
    """``its baseline``, or ``trained elsewhere`` for a teacher the run loaded."""
    elsewhere = any(str(r.get("run", "")).startswith("teachers/") for r in runs.values())
    return "trained elsewhere" if elsewhere else "its baseline"


def shown_labels(
    records: list[dict[str, Any]],
    split: str,
    target: str,
    source: str,
    weight: float | None,
    labels: Mapping[str, str],
) -> dict[str, str]:
    """``labels`` for one target and source, a method shown at a λ other than ``weight`` (a
    source that sets its own) titled with it: ``"Virtual samples (λ=0.3)"``."""
    out = {}
    for method, label in labels.items():
        runs = {} if method in _SINGLE else _by_seed(records, split, target, method, source, weight)
        lam = next(iter(runs.values()), {}).get("lambda")
        out[method] = label if lam is None or lam == weight else f"{label} (λ={lam:g})"
    return out


def format_table(rows: list[list[str]]) -> str:
    """A Markdown table from a header row and body rows."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _lambda_rows(
    records: list[dict[str, Any]], split: str, target: str, source: str
) -> list[list[str]]:
    runs = [
        r
        for r in records
        if r["split"] == split
        and r["target"] == target
        and r["source"] == source
        and r["method"] == "dcat"
        and not r.get("refit")
    ]
    by_lambda: dict[float, list[dict]] = defaultdict(list)
    for r in runs:
        by_lambda[r["lambda"]].append(r)
    # validation F1 beside the test metrics: λ is chosen on validation, never on test
    rows = [["λ", "Validation F1", *(label for _, label in METRICS)]]
    for lam in sorted(by_lambda):
        runs = by_lambda[lam]
        val = [r["val_f1"] for r in runs if r.get("val_f1") is not None]
        rows.append(
            [
                f"{lam:g}",
                _fmt(val) if val else "n/a",
                *(_fmt([r[m] for r in runs]) for m, _ in METRICS),
            ]
        )
    return rows


def _figure(**options: Any) -> Figure:
    # the Figure API draws with its own Agg canvas: pyplot or matplotlib.use would switch the
    # backend of a notebook or GUI session that runs an experiment
    from matplotlib.figure import Figure

    return Figure(**options)


# One colour per method across all plots (tab20's dark shades first), hatches per source.
_COLOURS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
]  # fmt: skip
_HATCHES = ["", "//", "..", "xx", "\\\\", "++"]


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """Method tag → its colour in every plot: the baseline first, then in ``methods`` order
    (colours repeat only past 16 methods)."""
    order = list(dict.fromkeys(["baseline", *methods]))
    return {m: _COLOURS[i % len(_COLOURS)] for i, m in enumerate(order)}


def _save(fig: Figure | None, out: Path, name: str) -> str | None:
    """Write ``fig`` as ``out/name`` (PNG); returns ``name``, or ``None`` without a figure."""
    if fig is None:
        return None
    fig.savefig(out / name, dpi=110)
    return name


def f1_figure(
    records: list[dict[str, Any]],
    split: str,
    weight: float,
    labels: Mapping[str, str] = METHOD_LABELS,
) -> Figure | None:
    """Bars of macro F1 per target (mean ± std over seeds) for one split, or ``None``.

    Each target shows only the models it has (no empty slots); a method has one colour in
    every plot (:func:`method_colours`) and each source its own hatch.
    """
    rows = [r for r in records if r["split"] == split and not r.get("refit")]
    targets = sorted({r["target"] for r in rows})
    # (target, method, source) → F1 per seed; the λ sweep has its own table
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    lambdas: dict[tuple[str, str, str], set[float | None]] = defaultdict(set)
    for r in rows:
        lambdas[(r["target"], r["method"], r["source"])].add(r["lambda"])
    for r in rows:
        key = (r["target"], r["method"], r["source"])
        if r["method"] in _SINGLE or r["lambda"] in (_shown_lambda(lambdas[key], weight), None):
            groups[key].append(r["f1"])
    if not groups:
        return None
    methods = list(dict.fromkeys(m for _, m, _ in groups))
    colours = method_colours([*labels, *methods])  # the same colours in every plot
    sources = list(dict.fromkeys(s for _, _, s in groups if s))
    widest = max(sum(1 for g in groups if g[0] == t) for t in targets)
    fig = _figure(figsize=(max(8, 0.6 * len(targets) * widest), 4))
    ax = fig.subplots()
    width = 0.8 / widest
    shown: set[str] = set()
    for x, target in enumerate(targets):
        # only the bars this target has, side by side: no empty slots
        bars = [g for g in groups if g[0] == target]
        bars.sort(key=lambda g: (g[1] != "baseline", methods.index(g[1]), g[2]))
        for i, key in enumerate(bars):
            _, method, source = key
            values = groups[key]
            name = labels.get(method, method)  # a variant with options may have no default label
            label = f"{name} ({source})" if source else name
            ax.bar(
                x + (i - (len(bars) - 1) / 2) * width,
                float(np.mean(values)),
                width,
                yerr=float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                capsize=3,
                color=colours[method],
                hatch=_HATCHES[sources.index(source) % len(_HATCHES)] if source else "",
                edgecolor="white" if not source else "black",
                label=label if label not in shown else None,
                gid=label,  # every bar names its series, for the legend's once-only labels
            )
            shown.add(label)
    ax.set_xticks(np.arange(len(targets)), targets)
    ax.set_ylabel("macro F1 (test)")
    ax.set_title(f"{split.upper()}: macro F1 per target, mean ± std over seeds")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def confusion_figure(
    out: Path,
    records: list[dict[str, Any]],
    split: str,
    target: str,
    source: str,
    weight: float | None,
    class_names: list[str],
) -> Figure | None:
    """The baseline's and D-CAT's test confusion matrices of one target, summed over seeds
    (read from each run's ``metrics.json`` under ``out``), rows normalised; or ``None``."""
    panels = []
    for method in ("baseline", "dcat"):
        runs = list(_by_seed(records, split, target, method, source, weight).values())
        total, seeds = None, len({r["seed"] for r in runs})
        for r in runs:
            matrix = np.array(RunFolder(out / r["run"]).read_metrics()["test"]["confusion_matrix"])
            total = matrix if total is None else total + matrix
        if total is not None:
            panels.append((METHOD_LABELS[method], total, seeds))
    if not panels:
        return None
    fig = _figure(figsize=(7 * len(panels), 6.5))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (title, matrix, seeds) in zip(axes[0], panels, strict=True):
        norm = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        summed = f"summed over {seeds} seeds" if seeds > 1 else "1 seed"
        ax.set_title(f"{title}: {target}, {split.upper()}, {summed} (rows normalised)")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ticks = np.arange(len(class_names))
        short = [f"{i}: {c[:22]}" for i, c in enumerate(class_names)]
        ax.set_xticks(ticks, short, rotation=90, fontsize=6)
        ax.set_yticks(ticks, short, fontsize=6)
    fig.tight_layout()
    return fig


def target_sections(
    records: list[dict[str, Any]],
    split: str,
    pairs: Sequence[tuple[str, str]],
    weight: float | None,
    labels: Mapping[str, str],
    out: Path | None = None,
    heading: str = "###",
    verdict: Callable[[Mapping[str, PairedComparison]], str] | None = None,
    rule: str = "seed",
    num_classes: int | None = None,
    val_samples: Mapping[tuple[str, int], int] | None = None,
    refit_sources: bool = False,
) -> list[str]:
    """The Markdown of one split, target by target: per source (``pairs`` holds
    ``(source, target)``) the method table, the teacher warnings, the pick counts and the
    paired statistics (with the Δ plot when ``out`` is given); then the pick's test-best count,
    the comparison with the plain reference and the refits. Every table of p-values is followed
    by the seed-count caveat (:func:`dcat.experiment.statistics.seed_caveat`). The README
    script renders the same text.

    Args:
        verdict: Called with each statistics table's comparisons when they hold p-values; its
            line follows the table.
        rule: The pick rule the run used (``selection`` of the configuration).
        num_classes: Number of classes; with it, a source at chance or weaker than its target
            is flagged under the table (:mod:`dcat.experiment.teachers`).
        val_samples: ``(split, seed)`` → validation samples, the noise floor of the chance
            check (:func:`dcat.experiment.teachers.split_val_samples`).
        refit_sources: The run refitted the picks' teachers (``refit_sources``): the refit
            table shows them.
    """
    lines: list[str] = []
    for target in dict.fromkeys(t for _, t in pairs):
        for source in [s for s, t in pairs if t == target]:
            warnings = (
                teacher_lines(records, split, source, target, num_classes, val_samples)
                if source and num_classes else []
            )  # fmt: skip
            lines += _source_section(
                records, split, source, target, weight, labels, out, heading, verdict, warnings,
            )  # fmt: skip
        lines += _target_section(records, split, target, labels, rule, refit_sources)
    return lines


def _source_section(
    records: list[dict[str, Any]],
    split: str,
    source: str,
    target: str,
    weight: float | None,
    all_labels: Mapping[str, str],
    out: Path | None,
    heading: str,
    verdict: Callable[[Mapping[str, PairedComparison]], str] | None,
    warnings: Sequence[str] = (),
) -> list[str]:
    """One target and source of :func:`target_sections`: the method table with ``warnings``
    (of the teacher) right under it, the pick counts, the paired statistics and their plot."""
    title = f"{heading} target {target}" + (f" ← source {source}" if source else "")
    labels = shown_labels(records, split, target, source, weight, all_labels)
    table = method_table(records, split, target, source, weight, labels)
    found = transfer_comparisons(records, split, target, source, weight, labels)
    lines = [title, "", format_table(table), ""]
    lines += [part for line in warnings for part in (f"**Warning:** {line}.", "")]
    lines += _caveat(_seeds(found)) if found else []
    picked = pick_counts(records, split, target, all_labels)
    if picked:
        lines += [f"dcat pick (best validation F1 per seed): {picked}.", ""]
    stats = statistics_table(found, labels)
    if stats:
        tested = _seeds(found) >= MIN_TEST_SEEDS
        how = " (bootstrap BCa CI; Holm across this target's methods)" if tested else ""
        lines += [f"Paired test F1 against the baseline, seed by seed{how}:", ""]
        lines += [format_table(stats), ""]
        lines += [verdict(found), ""] if verdict is not None and tested else []
        lines += _caveat(_seeds(found))
    if out is not None:
        figure = delta_figure(found, labels, f"{split.upper()}: {target} ← {source}")
        name = _save(figure, out, f"delta_{split}_{target}_from-{source}.png")
        lines += [f"![paired Δ F1]({name})", ""] if name else []
    return lines


def _target_section(
    records: list[dict[str, Any]],
    split: str,
    target: str,
    labels: Mapping[str, str],
    rule: str,
    refit_sources: bool = False,
) -> list[str]:
    """What :func:`target_sections` says of a target after its sources: the pick's test-best
    count, both pick rules, the plain reference and the refits."""
    lines: list[str] = []
    hits, seeds = pick_hits(records, split, target)
    if seeds:
        lines += [
            f"The pick was also a model of best test F1 in {hits} of {seeds} seeds "
            "(reported only; the pick is chosen on validation).",
            "",
        ]
    rules = selection_rows(records, split, target, rule)
    if rules:
        lines += [
            "The two pick rules on these models (`seed`: best validation F1 of each seed; "
            "`mean`: the configuration of best validation F1 averaged over the seeds), "
            "reported only:",
            "",
            format_table(rules),
            "",
            *_caveat(len(_by_seed(records, split, target, "baseline"))),
        ]
    found = reference_comparisons(records, split, target)
    versus = statistics_table(found, labels)
    if versus:
        lines += [
            f"Against the plain reference ({target} alone: encoder → pool → head, no "
            "attention, no transfer), seed by seed:",
            "",
            format_table(versus).replace("| Δ F1 |", "| Δ F1 vs plain |", 1),
            "",
            *_caveat(_seeds(found)),
        ]
    refit = refit_rows(records, split, target, refit_sources)
    if refit:
        table, found = refit
        lines += [
            "After refitting on all training subjects (training + validation, for the "
            f"epochs each model's validation chose), target {target}:",
            "",
            format_table(table),
            "",
        ]
        stats = statistics_table(found, {k: k for k in found})
        lines += [format_table(stats), "", *_caveat(_seeds(found))] if stats else []
    return lines


def write_report(
    out: Path, records: list[dict[str, Any]], config: Any, data: Any, jobs: Any = None
) -> Path:
    """Write ``report.md`` (and its PNGs) into ``out``; returns its path. ``jobs``: the run's
    plan (made again from ``config`` when not given)."""
    weight = config.weight
    labels = {**METHOD_LABELS, **method_labels(config, jobs)}
    lines = [
        f"# dcat experiment: {config.name}",
        "",
        f"Data set `{data.name}` ({len(data)} samples, {data.num_classes} classes, "
        f"modalities {', '.join(data.modalities)}); seeds {config.seeds}; test-split "
        f"metrics (macro precision, recall, F1). Written {date.today().isoformat()}.",
        "",
        "Cells: mean ± std over seeds; for transfers, (Δ mean paired difference to the "
        "baseline of the same split and seed, p = paired t-test over seeds).",
        "",
    ]
    pairs = list(dict.fromkeys((t.label, t.target) for t in config.transfers))
    val_samples = split_val_samples(out)  # the noise floor of the chance check
    for split_cfg in config.splits:  # each name once (the configuration checks it)
        split = split_cfg.label
        group = getattr(data, "group", "subject")
        title = SPLIT_TITLES.get(split, split)
        if split_cfg.curve is not None:  # a point: its split kind's title, and the point
            title = f"{SPLIT_TITLES.get(split_cfg.kind, split_cfg.kind)}, {split}"
        lines += [f"## {title.format(group=group)}", ""]
        if split_cfg.labelled in (0, []):
            lines += [
                "No labelled training sample at this point: no baseline, no plain reference "
                "and no method that learns from labels exist here. The models below learn "
                "from the teachers trained elsewhere alone, through the unlabelled recordings.",
                "",
            ]
        lines += target_sections(
            records, split, pairs or [("", m) for m in config.modalities], weight, labels, out,
            rule=config.selection, num_classes=data.num_classes, val_samples=val_samples,
            refit_sources=config.refit_sources,
        )  # fmt: skip
        plot = _save(f1_figure(records, split, weight, labels), out, f"f1_{split}.png")
        if plot:
            lines += [f"![macro F1, {split}]({plot})", ""]
        for source, target in pairs:
            figure = confusion_figure(out, records, split, target, source, weight, data.class_names)
            name = _save(figure, out, f"confusion_{split}_{target}_from-{source}.png")
            if name:
                lines += [f"![confusion matrices]({name})", ""]
    sweep = [
        (s, t)
        for s, t in pairs
        if len(
            {
                r["lambda"]
                for r in records
                if r["method"] == "dcat" and r["source"] == s and r["target"] == t
            }
        )
        > 1
    ]
    if sweep:
        lines += ["## Effect of the cross-attention weight λ (D-CAT with MCMA)", ""]
        for split in dict.fromkeys(s.label for s in config.splits):
            for source, target in sweep:
                lines += [
                    f"### {split.upper()}: target {target} ← source {source}",
                    "",
                    format_table(_lambda_rows(records, split, target, source)),
                    "",
                ]
    lines += curve_lines(records, config, labels, out)
    path = out / "report.md"
    write_atomic(path, "\n".join(lines))
    return path
