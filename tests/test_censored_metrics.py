"""Overload tells the truth: unserved requests count in latency percentiles (right-censored), a `<=` target
on a censored percentile fails, a horizon without a whole peak hour leaves peak_* undefined, and requests
in flight at the horizon are not counted as unavailable (docs/metrics.md)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.histogram import LogHistogram
from sim.engine.censored import Unserved, censored_quantile
from sim.engine.loading import load_config
from sim.engine.recorder import peak_hour_covered
from sim.engine.replication import simulate
from sim.engine.targets import Target, targets_summary
from tests.test_extremes import exp_of

ROOT = Path(__file__).resolve().parents[1]
latencies = st.lists(st.floats(min_value=1e-3, max_value=1e4, allow_nan=False), min_size=0, max_size=60)
QS = (0.5, 0.95, 0.99)


def tally(served: list[float], waits: list[float]) -> tuple[LogHistogram, Unserved]:
    u = Unserved()
    u.add(np.array(waits, dtype=float))
    return LogHistogram(np.array(served, dtype=float)), u


@settings(max_examples=60, deadline=None)
@given(served=latencies, waits=latencies, more=latencies)
def test_adding_unserved_requests_never_lowers_a_percentile(
    served: list[float], waits: list[float], more: list[float]
) -> None:
    h, u = tally(served, waits)
    h2, u2 = tally(served, waits + more)
    for q in QS:
        v, c = censored_quantile(h, u, q)
        v2, c2 = censored_quantile(h2, u2, q)
        if v is None:
            continue
        assert v2 is not None and v2 >= v
        assert c2 or not c  # once censored, more unserved requests keep it censored


@settings(max_examples=60, deadline=None)
@given(served=latencies.filter(bool), waits=latencies)
def test_p95_is_censored_exactly_when_more_than_5_percent_are_unserved(served: list[float], waits: list[float]) -> None:
    h, u = tally(served, waits)
    n = len(served) + len(waits)
    v, censored = censored_quantile(h, u, 0.95)
    assert censored == (math.ceil(0.95 * n) > len(served))
    if len(waits) > 0.05 * n + 1e-9:
        assert censored
    if censored:  # a floor: at least every served latency and the longest wait of an unserved request
        assert v is not None and v >= max(max(served), max(waits, default=0.0))
    else:  # no unserved request: the plain histogram quantile
        assert not waits or v is not None
        if not waits:
            assert v == h.quantile(0.95)


def test_a_p95_target_fails_when_censored_even_if_the_floor_is_below_it() -> None:
    t = Target.parse("ttft_p95_s<=2")
    assert t.met_by({"ttft_p95_s": 0.5, "ttft_p95_s.censored": 0})
    assert not t.met_by({"ttft_p95_s": 0.5, "ttft_p95_s.censored": 1})
    # a >= target on a floor that already exceeds its value is met (the true value is at least the floor)
    assert Target.parse("ttft_p95_s>=0.1").met_by({"ttft_p95_s": 0.5, "ttft_p95_s.censored": 1})


def test_a_target_on_an_undefined_metric_is_undefined_not_failed() -> None:
    targets = [Target.parse("peak_ttft_p95_s<=2"), Target.parse("availability>=0.99")]
    reps = [{"peak_ttft_p95_s": None, "availability": 1.0}] * 3
    out = targets_summary(targets, reps, 0.95)
    assert out["items"][0]["verdict"] == "undefined" and out["items"][0]["n"] == 0
    assert out["items"][1]["n"] == 3
    assert out["all"]["verdict"] == "undefined"


def test_peak_hour_coverage() -> None:
    assert not peak_hour_covered(9, 0.0, 0.3 * 3600)
    assert not peak_hour_covered(9, 0.0, 9.5 * 3600)
    assert peak_hour_covered(9, 0.0, 10 * 3600)
    assert not peak_hour_covered(9, 9.5 * 3600, 30 * 3600)  # warm-up cuts day 0's peak; day 1's is not whole
    assert peak_hour_covered(9, 9.5 * 3600, 34 * 3600)


def test_overload_percentiles_are_censored_and_the_target_fails() -> None:
    """One server at ~20x its capacity for 2.4 minutes: the served requests are the first batches, but most
    requests are still waiting, so the p95 TTFT is censored and its target fails."""
    exp = exp_of("workload.arrivals.mean_rps=400", "horizon_h=0.04")
    m = simulate(exp, 0).metrics
    assert m["in_flight"] > 0.5 * m["requests"]
    assert m["ttft_p95_s.censored"] == 1 and m["e2e_p95_s.censored"] == 1
    assert m["ttft_p95_s"] is not None and m["ttft_p95_s"] > 60.0  # at least the longest wait, not the cache hits
    assert not Target.parse("ttft_p95_s<=1000").met_by(m)
    # waiting longer than the TTFT SLO at the horizon counts against availability
    assert m["availability"] is not None and m["availability"] < 0.5
    assert m["in_flight_at_horizon"] == m["in_flight"]


def test_short_horizon_default_experiment(tmp_path: Path) -> None:
    """0.3 h of the default experiment: no failures, so availability is exactly 1 (the requests still in
    flight at the horizon are left out); the peak hour (09:00) is not covered, so peak_* is undefined."""
    exp = load_config(ROOT / "experiments" / "default.yaml", ["horizon_h=0.3", "replications=1"])
    m = simulate(exp, 0).metrics
    assert m["failed"] == 0 and m["dropped"] == 0 and m["in_flight"] > 0
    assert m["availability"] == 1.0
    assert m["peak_ttft_p95_s"] is None and m["ttft_p95_s"] is not None
