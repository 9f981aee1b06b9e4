"""Label-efficiency curves: test F1 against the labelled part of the training data.

A split run as a curve (``label_fractions`` or ``labelled_subjects``) is one split per point
(:meth:`dcat.experiment.config.SplitConfig.points`). Per curve and target, the report shows

* a plot of test macro F1 at each point for the baseline, the plain reference, each method and
  the dcat pick, mean over seeds with a 95 % confidence interval of the mean (Student's t);
* a table of the pick's paired Δ against the best model the user could train without a source
  at each point: per seed, the baseline or the plain reference, whichever has the higher
  validation F1 (chosen on validation, never on test), with the bootstrap CI, the paired t
  and Wilcoxon p-values and Holm's correction across the points
  (:mod:`dcat.experiment.statistics`);
* which methods learn from the labelled samples only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from dcat.experiment.plan import method_variants
from dcat.experiment.statistics import PairedComparison, compare, holm, seed_caveat
from dcat.training.methods import get_method

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dcat.experiment.config import ExperimentConfig

__all__ = [
    "Curve",
    "best_without_source",
    "curve_comparisons",
    "curve_figure",
    "curve_lines",
    "curve_table",
    "curves",
    "labelled_only",
    "mean_interval",
]

_WITHOUT_SOURCE = ("baseline", "plain")


@dataclass(frozen=True)
class Curve:
    """The points of one curve, in the order the configuration lists them.

    Attributes:
        name: The split the curve was expanded from (``ood``, or its ``name``).
        splits: Each point's split name (``ood_share0.25``, ...).
        ticks: Each point as the plot's axis shows it (``25 %``, ``1+3``).
    """

    name: str
    splits: tuple[str, ...]
    ticks: tuple[str, ...]


def curves(config: ExperimentConfig) -> list[Curve]:
    """The curves of ``config`` (none when no split runs as one)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for split in config.splits:
        if split.curve is not None:
            found.setdefault(split.curve, []).append((split.label, _tick(split.labelled)))
    return [Curve(name, *map(tuple, zip(*points, strict=True))) for name, points in found.items()]


def _tick(labelled: float | list[Any] | None) -> str:
    if isinstance(labelled, list):
        return "+".join(str(s) for s in labelled) or "none"
    return f"{100 * float(labelled or 0):g} %"


def _rows(records: Sequence[Mapping[str, Any]], split: str, target: str) -> list[Mapping[str, Any]]:
    return [
        r for r in records if r["split"] == split and r["target"] == target and not r.get("refit")
    ]


def best_without_source(
    records: Sequence[Mapping[str, Any]], split: str, target: str
) -> dict[int, Mapping[str, Any]]:
    """Seed → the baseline's or the plain reference's record, whichever has the higher
    validation F1 in that seed (the baseline on a tie): the best model without a source."""
    best: dict[int, Mapping[str, Any]] = {}
    for method in _WITHOUT_SOURCE:  # the baseline first: it keeps a tie
        for r in _rows(records, split, target):
            if r["method"] != method:
                continue
            held = best.get(r["seed"])
            if held is None or (r["val_f1"] or -math.inf) > (held["val_f1"] or -math.inf):
                best[r["seed"]] = r
    return best


def _series(
    records: Sequence[Mapping[str, Any]], split: str, target: str
) -> dict[str, dict[int, float]]:
    """Model → seed → test F1 at one point: the two models without a source, each method
    (with its source and λ when it has them) and the pick."""
    out: dict[str, dict[int, float]] = {}
    for r in _rows(records, split, target):
        name = r["method"]
        if name not in _WITHOUT_SOURCE:
            lam = f", λ={r['lambda']:g}" if r.get("lambda") is not None else ""
            name = f"{name} ({r['source']}{lam})"
        out.setdefault(name, {})[r["seed"]] = r["f1"]
        if r.get("pick"):
            out.setdefault("pick", {})[r["seed"]] = r["f1"]
    return out


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The mean and the half-width of its Student-t confidence interval (NaN below 2 values)."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean()) if x.size else math.nan
    if x.size < 2:
        return mean, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return mean, float(half)


def _reference_point(
    records: Sequence[Mapping[str, Any]], curve: Curve, target: str
) -> dict[str, str]:
    """Point → the point whose best model without a source it is compared with: itself, or
    for a point without one (no labels) the first point that has one."""
    has = [s for s in curve.splits if best_without_source(records, s, target)]
    return {s: s if s in has else has[0] for s in curve.splits if has}


def curve_comparisons(
    records: Sequence[Mapping[str, Any]], curve: Curve, target: str
) -> dict[str, PairedComparison]:
    """Point → the pick's paired comparison with the best model without a source (of the point,
    or for a point without labels of the first point with one), Holm across the points; a point
    without a pick is left out."""
    found = {}
    for split, against in _reference_point(records, curve, target).items():
        picks = {r["seed"]: r["f1"] for r in _rows(records, split, target) if r.get("pick")}
        best = best_without_source(records, against, target)
        if picks:
            found[split] = compare(picks, {s: r["f1"] for s, r in best.items()})
    adjusted = holm([c.p_t for c in found.values()])
    return {
        split: replace(c, p_holm=p) for (split, c), p in zip(found.items(), adjusted, strict=True)
    }


def _p(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{p:.3g}"


def curve_table(
    records: Sequence[Mapping[str, Any]], curve: Curve, target: str
) -> list[list[str]] | None:
    """The Markdown rows of the pick against the best model without a source, point by point;
    ``None`` when no point has both."""
    found = curve_comparisons(records, curve, target)
    if not found:
        return None
    rows = [[
        "labelled", "best without a source", "dcat pick", "Δ F1", "95 % CI", "t-test p",
        "Wilcoxon p", "Holm p", "seeds",
    ]]  # fmt: skip
    against = _reference_point(records, curve, target)
    ticks = dict(zip(curve.splits, curve.ticks, strict=True))
    for split, tick in ticks.items():
        c = found.get(split)
        if c is None:
            continue
        reference = best_without_source(records, against[split], target)
        picks = {r["seed"]: r["f1"] for r in _rows(records, split, target) if r.get("pick")}
        seeds = list(c.seeds)
        interval = "n/a" if math.isnan(c.ci_low) else f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]"
        # a point without labels is held against the first point's bar, and says so
        elsewhere = f" (at {ticks[against[split]]})" if against[split] != split else ""
        rows.append([
            tick,
            f"{np.mean([reference[s]['f1'] for s in seeds]):.3f}{elsewhere}",
            f"{np.mean([picks[s] for s in seeds]):.3f}",
            f"{c.mean:+.3f}", interval, _p(c.p_t), _p(c.p_wilcoxon), _p(c.p_holm),
            str(len(seeds)),
        ])  # fmt: skip
    return rows


def curve_figure(
    records: Sequence[Mapping[str, Any]],
    curve: Curve,
    target: str,
    labels: Mapping[str, str],
) -> Figure | None:
    """Test macro F1 against the labelled part, one line per model with its 95 % CI band;
    ``None`` without records."""
    from dcat.experiment.report import _figure, method_colours

    per_point = [_series(records, split, target) for split in curve.splits]
    names = list(dict.fromkeys(name for point in per_point for name in point))
    if not names:
        return None
    colours = method_colours([n.split(" (")[0] for n in names])
    fig = _figure(figsize=(8, 4.5))
    ax = fig.subplots()
    x = np.arange(len(curve.splits))
    for name in names:
        means, halves = zip(
            *(mean_interval(list(p.get(name, {}).values())) for p in per_point), strict=True
        )
        method = name.split(" (")[0]
        label = "dcat pick" if name == "pick" else labels.get(method, method) + name[len(method) :]
        pick = name == "pick"
        ax.plot(x, means, marker="o", label=label, color="black" if pick else colours[method],
                linewidth=2.5 if pick else 1.2, linestyle="-" if pick or method in
                _WITHOUT_SOURCE else "--")  # fmt: skip
        low = np.asarray(means) - np.nan_to_num(np.asarray(halves))
        high = np.asarray(means) + np.nan_to_num(np.asarray(halves))
        ax.fill_between(x, low, high, alpha=0.12, color="black" if pick else colours[method])
    ax.set_xticks(x, curve.ticks)
    ax.set_xlabel("labelled part of the training data")
    ax.set_ylabel("macro F1 (test)")
    ax.set_title(f"{curve.name}, target {target}: test F1, mean and 95 % CI over seeds")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def labelled_only(config: ExperimentConfig, labels: Mapping[str, str]) -> list[str]:
    """The labels of the run's methods that learn from the labelled samples only."""
    return [
        labels.get(v.tag, v.label)
        for v in method_variants(config)
        if not get_method(v.name).learns_unlabelled(v.option_dict)
    ]


def curve_lines(
    records: Sequence[Mapping[str, Any]],
    config: ExperimentConfig,
    labels: Mapping[str, str],
    out: Path | None = None,
) -> list[str]:
    """The report's section on the curves of ``config``: per curve and target the plot (when
    ``out`` is given) and the table; empty without curves."""
    from dcat.experiment.report import _save, format_table

    found = curves(config)
    if not found:
        return []
    lines = ["## Label-efficiency curves", ""]
    only = labelled_only(config, labels)
    if only:
        lines += [
            "Learn from the labelled samples only (the unlabelled ones never reach them): "
            f"{', '.join(only)}.",
            "",
        ]
    targets = list(dict.fromkeys(t.target for t in config.transfers)) or list(config.modalities)
    for curve in found:
        for target in targets:
            lines += [f"### {curve.name}: target {target}", ""]
            figure = curve_figure(records, curve, target, labels)
            name = _save(figure, out, f"curve_{curve.name}_{target}.png") if out else None
            if name:
                lines += [f"![label-efficiency curve]({name})", ""]
            table = curve_table(records, curve, target)
            if table is None:
                continue
            lines += [
                "The dcat pick against the best model without a source (baseline or plain "
                "reference, chosen per seed on validation), test F1, paired over seeds:",
                "",
                format_table(table),
                "",
            ]
            caveat = seed_caveat(min(int(row[-1]) for row in table[1:]))
            if caveat:
                lines += [caveat, ""]
    return lines
