"""Paired statistics against scipy and Holm's correction against a worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from dcat.experiment.statistics import compare, compare_all, holm

BASELINE = {
    s: v for s, v in enumerate([0.70, 0.72, 0.69, 0.75, 0.71, 0.73, 0.68, 0.74, 0.70, 0.72])
}
METHOD = {s: v + d for (s, v), d in zip(BASELINE.items(),
          [0.02, 0.01, 0.03, -0.01, 0.02, 0.04, 0.00, 0.02, 0.01, 0.03], strict=True)}  # fmt: skip


def test_compare_matches_scipy_on_fixed_numbers() -> None:
    got = compare(METHOD, BASELINE)
    d = np.array([METHOD[s] - BASELINE[s] for s in range(10)])
    assert got.seeds == tuple(range(10))
    assert got.mean == pytest.approx(0.017) and got.mean == pytest.approx(d.mean())
    assert got.std == pytest.approx(d.std(ddof=1))
    a, b = np.array(list(METHOD.values())), np.array(list(BASELINE.values()))
    assert got.p_t == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert got.p_wilcoxon == pytest.approx(stats.wilcoxon(d).pvalue)
    rng = np.random.default_rng(0)
    reference = stats.bootstrap(
        (d,), np.mean, n_resamples=9999, method="BCa", random_state=rng
    ).confidence_interval
    assert (got.ci_low, got.ci_high) == pytest.approx((reference.low, reference.high))
    assert got.ci_low < got.mean < got.ci_high and got.ci_low > 0  # this lift is clear
    assert compare(METHOD, BASELINE) == got  # reproducible: the bootstrap has a fixed state


def test_compare_only_uses_common_seeds_and_degrades_to_nan() -> None:
    partial = compare({0: 0.8, 1: 0.9, 5: 0.7}, {0: 0.7, 1: 0.7, 2: 0.7})
    assert partial.seeds == (0, 1) and partial.differences == pytest.approx((0.1, 0.2))
    assert math.isnan(partial.ci_low)  # two seeds: no interval
    one = compare({0: 0.8}, {0: 0.7})
    assert one.mean == pytest.approx(0.1) and math.isnan(one.std) and math.isnan(one.p_t)
    same = compare({0: 0.7, 1: 0.7, 2: 0.7}, {0: 0.7, 1: 0.7, 2: 0.7})
    assert same.mean == 0 and math.isnan(same.p_t) and math.isnan(same.p_wilcoxon)


def test_holm_worked_example() -> None:
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → max so far 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    adjusted = holm([0.02, math.nan, 0.01])
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.02)
    assert math.isnan(adjusted[1])


def test_compare_all_corrects_across_the_methods() -> None:
    worse = {s: v - 0.005 * (s % 3) for s, v in BASELINE.items()}
    found = compare_all({"dcat": METHOD, "kd": worse}, BASELINE)
    raw = [found["dcat"].p_t, found["kd"].p_t]
    assert [found["dcat"].p_holm, found["kd"].p_holm] == pytest.approx(holm(raw))
    assert found["dcat"].p_holm >= found["dcat"].p_t


def test_no_p_value_or_interval_below_three_seeds() -> None:
    from dcat.experiment.statistics import seed_caveat

    two = compare({0: 0.80, 1: 0.95}, {0: 0.70, 1: 0.70})  # Δ varies: scipy would give a p
    assert two.mean == pytest.approx(0.175) and two.std == pytest.approx(0.1060660)
    assert math.isnan(two.p_t) and math.isnan(two.p_wilcoxon) and math.isnan(two.ci_low)
    assert math.isnan(compare_all({"dcat": {0: 0.8, 1: 0.95}}, {0: 0.7, 1: 0.7})["dcat"].p_holm)
    three = compare({0: 0.80, 1: 0.95, 2: 0.75}, {0: 0.70, 1: 0.70, 2: 0.72})
    p = stats.ttest_rel([0.80, 0.95, 0.75], [0.70, 0.70, 0.72]).pvalue
    assert three.p_t == pytest.approx(p) and not math.isnan(three.ci_low)
    assert seed_caveat(2) == (
        "2 seeds: too few for a test (no p-value or confidence interval below 3 seeds)."
    )
    assert seed_caveat(1).startswith("1 seed: too few for a test")
    assert seed_caveat(3) == (
        "3 seeds are a smoke test, not evidence (p-values from fewer than 10 seeds)."
    )
    assert seed_caveat(9).startswith("9 seeds are a smoke test") and seed_caveat(10) is None
