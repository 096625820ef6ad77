"""Tests for sim.core.stats (statistics across replications)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from sim.core.stats import bootstrap_interval, paired_difference, summarize, t_interval, wilson_interval

SUMMARY_KEYS = {"n", "mean", "ci95_low", "ci95_high", "p5", "p50", "p95"}

messy_value = st.one_of(
    st.none(),
    st.just(math.nan),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
)
messy_values = st.lists(messy_value, max_size=30)


# ---------------------------------------------------------------------- t interval
def test_t_interval_known_values() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    mean, low, high = t_interval(x)
    half = sps.t.ppf(0.975, 4) * np.std(x, ddof=1) / math.sqrt(5)
    assert mean == pytest.approx(3.0)
    assert low == pytest.approx(3.0 - half)
    assert high == pytest.approx(3.0 + half)
    # A wider confidence gives a wider interval.
    _, low99, high99 = t_interval(x, confidence=0.99)
    assert low99 < low and high99 > high


def test_t_interval_edge_cases() -> None:
    assert t_interval([]) is None
    assert t_interval([None, math.nan]) is None
    assert t_interval([2.5]) == (2.5, 2.5, 2.5)
    assert t_interval([None, 2.5, math.nan]) == (2.5, 2.5, 2.5)
    assert t_interval([4.0, 4.0, 4.0]) == (4.0, 4.0, 4.0)
    with pytest.raises(ValueError):
        t_interval([1.0, 2.0], confidence=1.0)


def test_t_interval_coverage() -> None:
    rng = np.random.default_rng(20240601)
    true_mean, n_trials, size = 3.0, 2000, 10
    samples = rng.normal(loc=true_mean, scale=2.0, size=(n_trials, size))
    covered = 0
    for row in samples:
        _, low, high = t_interval(row, confidence=0.95)
        covered += low <= true_mean <= high
    assert 0.935 <= covered / n_trials <= 0.965


# ---------------------------------------------------------------------- bootstrap
def test_bootstrap_interval_reproducible_and_sane() -> None:
    x = np.random.default_rng(7).normal(10.0, 1.0, size=50)
    state_before = np.random.get_state()[1].copy()  # noqa: NPY002
    a = bootstrap_interval(x, seed=3)
    b = bootstrap_interval(x, seed=3)
    c = bootstrap_interval(x, seed=4)
    assert a == b
    assert a != c
    np.testing.assert_array_equal(np.random.get_state()[1], state_before)  # noqa: NPY002
    low, high = a
    assert low < float(np.mean(x)) < high
    # Close to the t interval for a normal sample.
    _, tl, th = t_interval(x)
    assert low == pytest.approx(tl, abs=0.15) and high == pytest.approx(th, abs=0.15)


def test_bootstrap_interval_other_stats_and_edges() -> None:
    x = [1.0, None, 2.0, 3.0, math.nan, 10.0]
    low, high = bootstrap_interval(x, stat=np.median, n_boot=500)
    assert 1.0 <= low <= high <= 10.0
    # A stat without an axis argument still works (per-resample fallback).
    low2, high2 = bootstrap_interval(x, stat=lambda s: float(max(s)), n_boot=200)
    assert 2.0 <= low2 <= high2 == 10.0
    assert bootstrap_interval([5.0]) == (5.0, 5.0)
    with pytest.raises(ValueError):
        bootstrap_interval([None, math.nan])


# ---------------------------------------------------------------------- wilson
def _wilson_formula(s: int, n: int, z: float) -> tuple[float, float]:
    p = s / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return center - half, center + half


@pytest.mark.parametrize(("s", "n"), [(0, 10), (10, 10), (5, 10), (1, 3), (37, 200)])
def test_wilson_interval_matches_formula(s: int, n: int) -> None:
    z = 1.959963984540054
    low, high = wilson_interval(s, n)
    exp_low, exp_high = _wilson_formula(s, n, z)
    assert low == pytest.approx(max(0.0, exp_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, exp_high), abs=1e-12)
    assert 0.0 <= low <= s / n <= high <= 1.0


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert high == 1.0
    assert low == pytest.approx(0.7225, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4)
    assert high == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(-1, 10)


# ---------------------------------------------------------------------- summarize
def test_summarize_empty_gives_none() -> None:
    for empty in ([], [None], [math.nan, None], np.array([])):
        s = summarize(empty)
        assert set(s) == SUMMARY_KEYS
        assert s["n"] == 0
        assert all(s[k] is None for k in SUMMARY_KEYS - {"n"})


def test_summarize_values() -> None:
    x = [float(v) for v in range(1, 21)]
    s = summarize([*x, None, math.nan])
    assert s["n"] == 20
    mean, low, high = t_interval(x)
    assert s["mean"] == pytest.approx(mean)
    assert s["ci95_low"] == pytest.approx(low)
    assert s["ci95_high"] == pytest.approx(high)
    assert s["p5"] == pytest.approx(np.percentile(x, 5, method="linear"))
    assert s["p50"] == pytest.approx(10.5)
    assert s["p95"] == pytest.approx(np.percentile(x, 95, method="linear"))
    one = summarize([3.0])
    assert one == {"n": 1, "mean": 3.0, "ci95_low": 3.0, "ci95_high": 3.0, "p5": 3.0, "p50": 3.0, "p95": 3.0}


@settings(max_examples=100, deadline=None)
@given(messy_values)
def test_summarize_never_nan(values: list) -> None:
    s = summarize(values)
    assert set(s) == SUMMARY_KEYS
    for k, v in s.items():
        assert v is None or (isinstance(v, int | float) and math.isfinite(v)), (k, v)
    json.dumps(s, allow_nan=False)  # strictly JSON-safe
    finite = [v for v in values if v is not None and math.isfinite(v)]
    assert s["n"] == len(finite)
    if not finite:
        assert all(s[k] is None for k in SUMMARY_KEYS - {"n"})


# ---------------------------------------------------------------------- paired difference
def test_paired_difference() -> None:
    a = [10.0, 12.0, None, 11.0, 13.0, math.nan]
    b = [9.0, 10.0, 5.0, 10.5, 11.0, 1.0]
    d = paired_difference(a, b)
    diffs = [1.0, 2.0, 0.5, 2.0]
    mean, low, high = t_interval(diffs)
    assert d["n"] == 4
    assert d["mean"] == pytest.approx(mean)
    assert d["ci_low"] == pytest.approx(low)
    assert d["ci_high"] == pytest.approx(high)
    json.dumps(d, allow_nan=False)


def test_paired_difference_edges() -> None:
    d = paired_difference([None, 1.0], [2.0, math.nan])
    assert d["n"] == 0 and d["mean"] is None and d["ci_low"] is None and d["ci_high"] is None
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_paired_difference_never_nan(data) -> None:
    a = data.draw(messy_values)
    b = data.draw(st.lists(messy_value, min_size=len(a), max_size=len(a)))
    d = paired_difference(a, b)
    json.dumps(d, allow_nan=False)
