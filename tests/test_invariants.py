"""Properties every replication must have, over random small configs (tests/strategies.py).

Conservation, causality of per-request records, bounds on every metric, determinism (same seed, any
worker count) and two pathwise monotonicity theorems under common random numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.config import Experiment
from sim.core.metrics import METRICS
from sim.core.request_block import DROPPED, FAILED, PATH_API_BATCH, PATH_CACHE, PATH_GPU, PENDING, SERVED
from sim.engine.executor import Executor
from sim.engine.replication import ReplicationResult, simulate
from tests.strategies import MAX_EXPECTED_REQUESTS, POLICIES_ALL, experiment_dicts, experiments, to_experiment
from workloads.token_counts import make_token_distribution

EPS = 1e-9

FRACTIONS = ("gpu_utilization", "availability", "uptime", "slo_attainment")
NON_NEGATIVE = tuple(m for m in METRICS if m not in FRACTIONS)


def _records(res: ReplicationResult) -> dict[str, np.ndarray]:
    assert res.requests is not None or res.metrics["requests"] == 0
    if res.requests is None:
        return {}
    return res.requests


# -- conservation, bounds ----------------------------------------------------------------------------------
@given(exp=experiments(policies=POLICIES_ALL), rep=st.integers(0, 3))
def test_conservation_and_bounds(exp: Experiment, rep: int) -> None:
    res = simulate(exp, rep)
    m = res.metrics
    for name in METRICS:
        assert name in m, name
    for name, v in m.items():
        assert v is None or (isinstance(v, (int, float)) and math.isfinite(v)), f"{name} = {v!r}"
    # every request ends in exactly one state (or is still in flight at the horizon)
    assert m["requests"] == m["served"] + m["failed"] + m["dropped"] + m["in_flight"]
    assert m["served"] == m["cache_hits"] + m["served_by_api"] + m["served_by_gpu"]
    for name in FRACTIONS:
        v = m[name]
        assert v is None or -EPS <= v <= 1 + EPS, f"{name} = {v}"
    for name in NON_NEGATIVE:
        v = m[name]
        assert v is None or v >= 0, f"{name} = {v}"
    if m["requests"]:
        assert m["availability"] is not None and m["slo_attainment"] is not None
        assert m["slo_attainment"] <= m["availability"] + EPS
    if m["served"]:
        assert m["ttft_p50_s"] <= m["ttft_p95_s"] <= m["ttft_p99_s"]
        assert m["e2e_p50_s"] <= m["e2e_p95_s"] <= m["e2e_p99_s"]
        assert m["ttft_mean_s"] <= m["e2e_mean_s"] + EPS
    assert m["peak_concurrency"] >= 0
    total = m["cost_api_usd"] + m["cost_gpu_usd"] + m["cost_fixed_usd"]
    assert math.isclose(m["cost_total_usd"], total, rel_tol=1e-9, abs_tol=1e-12)
    rec = _records(res)
    assert len(rec.get("arrival_at", [])) == m["requests"]
    ts = res.timeseries
    for col in ("arrivals", "in_flight", "queue_len", "busy_servers", "healthy_servers", "spend_usd"):
        assert np.isfinite(ts[col]).all() and (ts[col] >= -EPS).all(), col
    assert (ts["busy_servers"] <= ts["healthy_servers"] + EPS).all()
    assert ts["arrivals"].sum() >= m["requests"]
    if exp.warmup_h == 0:
        assert ts["arrivals"].sum() == m["requests"]


# -- causality -----------------------------------------------------------------------------------------------
@given(exp=experiments(policies=POLICIES_ALL), rep=st.integers(0, 3))
def test_causality_of_request_records(exp: Experiment, rep: int) -> None:
    res = simulate(exp, rep)
    rec = _records(res)
    if not rec:
        return
    horizon = exp.horizon_h * 3600.0
    arr, start, first, done = rec["arrival_at"], rec["start_at"], rec["first_token_at"], rec["done_at"]
    status, path = rec["status"], rec["path"]
    assert (np.diff(arr) >= 0).all()
    assert ((arr >= exp.warmup_h * 3600.0 - EPS) & (arr < horizon)).all()
    served = status == SERVED
    s = served
    assert (arr[s] <= start[s] + EPS).all()
    assert (start[s] <= first[s] + EPS).all()
    assert (first[s] <= done[s] + EPS).all()
    # failed and dropped requests end no earlier than they arrived; pending ones have no end
    ended = (status == FAILED) | (status == DROPPED)
    assert (done[ended] >= arr[ended] - EPS).all()
    assert np.isnan(done[status == PENDING]).all()
    # a request that started waited no less than zero; one that got a first token had started
    started = ~np.isnan(start)
    assert (start[started] >= arr[started] - EPS).all()
    assert not (np.isfinite(first) & ~started).any()
    # cache hits answer after the hit latency, the batch API all at once
    hits = served & (path == PATH_CACHE)
    lat = exp.cache.response.hit_latency_s
    np.testing.assert_allclose(done[hits] - arr[hits], lat, atol=1e-9)
    batch = served & (path == PATH_API_BATCH)
    np.testing.assert_allclose(first[batch], done[batch])
    # the GPU: the first token ends the first iteration (>= base), each later token one more iteration
    gpu = served & (path == PATH_GPU)
    it = exp.backends.gpu_pool.iteration_s
    assert it is not None
    base = it.base + it.per_seq
    assert (first[gpu] - start[gpu] >= base - 1e-9).all()
    out = rec["output_tokens"][gpu]
    assert (done[gpu] - first[gpu] >= (out - 1) * base - 1e-6).all()
    # a dropped request was dropped after its class timeout, while it waited; a request still waiting at
    # the horizon has not outwaited its timeout (else the client gave up: it is dropped, not in flight)
    timeout = np.array([c.timeout_s or math.inf for c in exp.workload.classes])[rec["class_idx"]]
    d = status == DROPPED
    assert (done[d] - arr[d] >= timeout[d] - 1e-6).all()
    assert np.isnan(start[d]).all()
    waiting = (status == PENDING) & np.isnan(start)
    assert (arr[waiting] + timeout[waiting] >= horizon - 1e-6).all()


# -- determinism ---------------------------------------------------------------------------------------------
def _rows(results: list[ReplicationResult] | Any) -> list[tuple[int, dict[str, Any], dict[str, float]]]:
    return [(r.replication, r.metrics, r.breakdown) for r in sorted(results, key=lambda r: r.replication)]


@given(exp=experiments(policies=POLICIES_ALL), rep=st.integers(0, 1000))
def test_same_seed_same_metrics(exp: Experiment, rep: int) -> None:
    a, b = simulate(exp, rep), simulate(exp, rep)
    assert a.metrics == b.metrics
    assert a.breakdown == b.breakdown
    for col in a.timeseries:
        np.testing.assert_array_equal(a.timeseries[col], b.timeseries[col])
    ra, rb = _records(a), _records(b)
    for col in ra:
        np.testing.assert_array_equal(ra[col], rb[col])


@settings(max_examples=6)
@given(exp=experiments(policies=POLICIES_ALL))
def test_worker_count_does_not_change_results(exp: Experiment) -> None:
    reps = range(4)
    one = _rows(Executor(workers=1).run(exp, reps))
    two = _rows(Executor(workers=2).run(exp, reps))
    assert one == two


# -- monotonicity under common random numbers ------------------------------------------------------------------
@st.composite
def _fcfs_multiserver(draw: st.DrawFn) -> dict[str, Any]:
    """max_batch 1, one priority level, no timeouts, no cold start: the pool is FCFS G/G/c whose service
    times belong to the requests (K iterations of a batch of one), so Kiefer-Wolfowitz applies: every
    request's start time is pathwise non-increasing in c."""
    d = draw(experiment_dicts(policies=("gpu_only",), servers=st.integers(1, 3)))
    for cls in d["workload"]["classes"]:
        cls.pop("timeout_s", None)
        cls["priority"] = 0
    pool = d["backends"]["gpu_pool"]
    pool["max_batch"] = 1
    pool["cold_start_s"] = {"dist": "constant", "value": 0}
    # load the pool: aim the arrival rate at rho in [0.3, 1.3] (capped by the strategy's request budget)
    exp = to_experiment(d)
    it = pool["iteration_s"]
    es = 0.0
    for cls in exp.workload.classes:
        k_in = make_token_distribution(cls.input_tokens).mean
        k_out = make_token_distribution(cls.output_tokens).mean
        per_iter = it["base"] + it["per_seq"] + it["per_kv_token"] * (k_in + k_out / 2)
        es += cls.share * (k_out * per_iter + it["per_prefill_token"] * k_in)
    rho = draw(st.floats(0.3, 1.3))
    cap = MAX_EXPECTED_REQUESTS / (d["horizon_h"] * 3600.0)
    d["workload"]["arrivals"]["mean_rps"] = round(min(rho * pool["servers"] / es, cap), 6)
    return d


@given(d=_fcfs_multiserver(), extra=st.integers(1, 2), rep=st.integers(0, 3))
def test_more_servers_never_delay_anyone(d: dict[str, Any], extra: int, rep: int) -> None:
    small = to_experiment(d)
    d_big = {**d, "backends": {**d["backends"], "gpu_pool": {**d["backends"]["gpu_pool"]}}}
    d_big["backends"]["gpu_pool"]["servers"] = d["backends"]["gpu_pool"]["servers"] + extra
    big = to_experiment(d_big)
    rs, rb = _records(simulate(small, rep)), _records(simulate(big, rep))
    if not rs:
        return
    np.testing.assert_array_equal(rs["arrival_at"], rb["arrival_at"])
    inf = np.inf
    start_s = np.where(np.isnan(rs["start_at"]), inf, rs["start_at"])
    start_b = np.where(np.isnan(rb["start_at"]), inf, rb["start_at"])
    assert (start_b <= start_s + 1e-9).all()
    # hence the mean queue wait over the requests that started in both runs does not rise
    both = np.isfinite(start_s) & np.isfinite(start_b)
    if both.any():
        arr = rs["arrival_at"][both]
        assert (start_b[both] - arr).mean() <= (start_s[both] - arr).mean() + 1e-9


@given(d=experiment_dicts(cache=True), grow=st.integers(1, 300), rep=st.integers(0, 3))
def test_bigger_lru_cache_never_loses_a_hit(d: dict[str, Any], grow: int, rep: int) -> None:
    """LRU is a stack algorithm: the content of a cache of size C is always a subset of that of size C' > C,
    so every hit of the small cache is a hit of the big one. (Only without expiry: with a TTL from
    insertion, a small cache that evicted and re-inserted a key holds a fresher copy than a big one.)"""
    d["cache"]["response"]["ttl_s"] = d["horizon_h"] * 3600.0 + 1.0
    small = to_experiment(d)
    d_big = {**d, "cache": {**d["cache"], "response": {**d["cache"]["response"]}}}
    d_big["cache"]["response"]["capacity"] = d["cache"]["response"]["capacity"] + grow
    big = to_experiment(d_big)
    a, b = simulate(small, rep), simulate(big, rep)
    assert b.metrics["cache_hits"] >= a.metrics["cache_hits"]
    ra, rb = _records(a), _records(b)
    if ra:
        hit_a = ra["path"] == PATH_CACHE
        hit_b = rb["path"] == PATH_CACHE
        assert not (hit_a & ~hit_b).any()
