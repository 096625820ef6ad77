"""Intervals stay in the range of the quantity: proportions inside [0, 1] (logit scale), counts and costs
non-negative; and the coverage of the across-replication intervals at 8 replications, measured
(benchmarks/interval_coverage.py prints the full table)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.interval_coverage import coverage
from sim.core.metrics import metric_bounds
from sim.core.stats import bounded_t_interval, summarize
from tests.strategies import replication_proportions


@given(replication_proportions())
def test_proportion_intervals_lie_in_the_unit_interval_around_the_mean(values: list[float]) -> None:
    s = summarize(values, *metric_bounds("availability"))
    lo, mean, hi = s["ci95_low"], s["mean"], s["ci95_high"]
    assert lo is not None and mean is not None and hi is not None
    assert 0.0 <= lo <= mean <= hi <= 1.0


@given(st.lists(st.integers(0, 3).map(float), min_size=1, max_size=30))
def test_count_intervals_are_never_negative(values: list[float]) -> None:
    s = summarize(values, *metric_bounds("in_flight"))
    assert s["ci95_low"] is not None and s["mean"] is not None
    assert 0.0 <= s["ci95_low"] <= s["mean"] <= s["ci95_high"]


def test_reported_cases() -> None:
    # the availability: 8 replications, a wide spread near 1 (t interval up to 1.025)
    values = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.8]
    m, lo, hi = bounded_t_interval(values, 0.0, 1.0)  # type: ignore[misc]
    assert lo < m < hi < 1.0
    # every replication at the bound: the degenerate interval
    assert bounded_t_interval([1.0] * 8, 0.0, 1.0) == (1.0, 1.0, 1.0)
    # in_flight: mostly 0
    assert bounded_t_interval([0, 0, 0, 0, 0, 0, 0, 5], 0.0, None)[1] == 0.0  # type: ignore[index]


@pytest.mark.slow
def test_at_8_replications_the_t_interval_covers_and_the_percentile_bootstrap_does_not() -> None:
    """400 experiments of 8 replications (binomial se of a coverage ~0.011; tolerances 3 se): the interval
    capsim writes (t on the metric's scale) keeps near-nominal coverage on a skewed tail latency and on a
    count, the percentile bootstrap is too narrow (measured 0.92 / 0.87 at 1,000 experiments)."""
    for case in ("p95-like", "in-flight"):
        c = coverage(case, 8, 400, seed=1, n_boot=1000)
        assert c["bounded"] >= 0.95 - 0.06, (case, c)
        assert c["bounded"] >= c["bootstrap"] + 0.02, (case, c)
    avail = coverage("availability", 8, 400, seed=1, n_boot=1000)
    assert avail["bounded"] >= avail["t"], avail  # the logit scale helps near the bound
