"""Paired comparisons over seeds, as a reviewer expects them: Δ, bootstrap CI, t and Wilcoxon, Holm.

Every model of one seed shares that seed's split, so a method is compared with the baseline seed
by seed: the per-seed difference ``d_s = metric_method(s) − metric_baseline(s)``. Reported:

* the mean and standard deviation of ``d``;
* a bootstrap confidence interval of the mean of ``d`` (:func:`scipy.stats.bootstrap`, BCa,
  fixed random state so a report is reproducible);
* the paired t-test (:func:`scipy.stats.ttest_rel`) and the Wilcoxon signed-rank test
  (:func:`scipy.stats.wilcoxon`), both two-sided;
* Holm's step-down correction across the methods compared for one target (:func:`holm`).

Below :data:`MIN_TEST_SEEDS` common seeds no p-value and no interval is computed: with two seeds
a t-test has one degree of freedom and says nothing a reader should act on. Below
:data:`EVIDENCE_SEEDS` the report keeps a "smoke test" caveat beside every p
(:func:`seed_caveat`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "EVIDENCE_SEEDS",
    "MIN_TEST_SEEDS",
    "PairedComparison",
    "compare",
    "compare_all",
    "holm",
    "seed_caveat",
]

MIN_TEST_SEEDS = 3
"""Fewest common seeds a p-value or a confidence interval is computed from."""
EVIDENCE_SEEDS = 10
"""Fewest seeds whose p-values are reported without the "smoke test" caveat."""


def seed_caveat(seeds: int) -> str | None:
    """The line beside p-values from ``seeds`` seeds, or ``None`` from enough of them.

    Below :data:`MIN_TEST_SEEDS`: there is no test (``"2 seeds: too few for a test ..."``);
    below :data:`EVIDENCE_SEEDS`: ``"3 seeds are a smoke test, not evidence ..."``.
    """
    plural = "s" if seeds != 1 else ""
    if seeds < MIN_TEST_SEEDS:
        return (
            f"{seeds} seed{plural}: too few for a test (no p-value or confidence interval "
            f"below {MIN_TEST_SEEDS} seeds)."
        )
    if seeds < EVIDENCE_SEEDS:
        return (
            f"{seeds} seeds are a smoke test, not evidence (p-values from fewer than "
            f"{EVIDENCE_SEEDS} seeds)."
        )
    return None


@dataclass(frozen=True)
class PairedComparison:
    """A method against the baseline over the seeds both have.

    Attributes:
        seeds: The common seeds, sorted.
        differences: ``d_s`` per seed, in ``seeds`` order.
        mean: Mean of ``d`` (NaN without a common seed).
        std: Sample standard deviation of ``d`` (NaN with fewer than 2 seeds).
        ci_low: Lower end of the bootstrap confidence interval of the mean (NaN when it cannot
            be computed: fewer than :data:`MIN_TEST_SEEDS` seeds, or all differences equal).
        ci_high: Upper end.
        p_t: Two-sided paired t-test p-value (NaN with fewer than :data:`MIN_TEST_SEEDS`
            seeds or no variance).
        p_wilcoxon: Two-sided Wilcoxon signed-rank p-value (NaN with fewer than
            :data:`MIN_TEST_SEEDS` seeds or all differences zero).
        p_holm: ``p_t`` after Holm's correction across the methods of one target
            (:func:`compare_all`); NaN until then.
    """

    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    std: float
    ci_low: float
    ci_high: float
    p_t: float
    p_wilcoxon: float
    p_holm: float = math.nan


def compare(
    values: Mapping[int, float],
    baseline: Mapping[int, float],
    *,
    confidence: float = 0.95,
    resamples: int = 9999,
    seed: int = 0,
    bootstrap: bool = True,
) -> PairedComparison:
    """Compare a method with the baseline seed by seed.

    Args:
        values: Seed → the method's metric.
        baseline: Seed → the baseline's metric.
        confidence: Confidence level of the interval.
        resamples: Bootstrap resamples.
        seed: Random state of the bootstrap.
        bootstrap: Compute the confidence interval (NaN without; the rest is cheap).

    Returns:
        :class:`PairedComparison`.
    """
    seeds = tuple(sorted(set(values) & set(baseline)))
    d = np.array([values[s] - baseline[s] for s in seeds], dtype=np.float64)
    nan = math.nan
    mean = float(d.mean()) if len(d) else nan
    std = float(d.std(ddof=1)) if len(d) > 1 else nan
    tested = len(d) >= MIN_TEST_SEEDS  # fewer: no p-value, no interval
    varies = tested and bool(np.ptp(d) > 0)
    p_t = p_w = low = high = nan
    if varies:
        a = np.array([values[s] for s in seeds])
        b = np.array([baseline[s] for s in seeds])
        p_t = float(stats.ttest_rel(a, b).pvalue)
    if tested and np.any(d != 0):
        p_w = float(stats.wilcoxon(d).pvalue)
    if bootstrap and varies:
        with warnings.catch_warnings():
            # BCa warns on small samples it still handles; the interval is what we report
            warnings.simplefilter("ignore", category=RuntimeWarning)
            interval = stats.bootstrap(
                (d,),
                np.mean,
                confidence_level=confidence,
                n_resamples=resamples,
                method="BCa",
                random_state=np.random.default_rng(seed),
            ).confidence_interval
        low, high = float(interval.low), float(interval.high)
    return PairedComparison(seeds, tuple(d.tolist()), mean, std, low, high, p_t, p_w)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN entries are left out and stay NaN).

    With ``m`` p-values sorted ascending, ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) · p_(j))``.

    Args:
        pvalues: Raw p-values, in any order.

    Returns:
        Adjusted p-values in the input order.
    """
    index = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    order = sorted(index, key=lambda i: pvalues[i])
    m = len(order)
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def compare_all(
    methods: Mapping[str, Mapping[int, float]], baseline: Mapping[int, float], **options: Any
) -> dict[str, PairedComparison]:
    """:func:`compare` each method with the baseline, with Holm's correction across them.

    Args:
        methods: Method → (seed → metric).
        baseline: Seed → the baseline's metric.
        **options: Passed to :func:`compare`.

    Returns:
        Method → :class:`PairedComparison`, ``p_holm`` set.
    """
    found = {name: compare(values, baseline, **options) for name, values in methods.items()}
    adjusted = holm([c.p_t for c in found.values()])
    return {
        name: replace(c, p_holm=p) for (name, c), p in zip(found.items(), adjusted, strict=True)
    }
