"""RPM/TPM token buckets answering 429, retries with exponential backoff and jitter, in time order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.api.rate_limit import ACCEPTED, LIMITED, TOO_LARGE, TokenBuckets, backoff_s
from sim.config.api import RateLimitSpec
from sim.engine.loading import load_config_text
from sim.engine.replication import simulate

RPM = """
name: rpm
seed: 3
horizon_h: 1
workload:
  arrivals: {kind: constant, mean_rps: 15}      # 900 offered per minute
  classes: [{name: a, share: 1.0, input_tokens: {dist: constant, value: 100},
             output_tokens: {dist: constant, value: 50}}]
routing: {policy: api_only}
backends:
  api:
    rate_limit: {rpm: 600, max_retries: 5, backoff_s: 1.0}
output: {requests: true}
"""


def accepted_per_minute(r) -> np.ndarray:
    q = r.requests
    ok = q["status"] == 1
    return np.bincount((q["start_at"][ok] // 60).astype(np.int64), minlength=60)[:60]


def test_600_rpm_under_900_offered_serves_at_most_600_a_minute() -> None:
    r = simulate(load_config_text(RPM), 0)
    m = r.metrics
    per_min = accepted_per_minute(r)
    burst = 600 * 1.0 / 60  # rpm_burst_s = 1 s: the bucket starts with 10 tokens
    assert per_min[0] <= 600 + burst
    assert per_min[1:].max() <= 600
    assert per_min[1:].mean() >= 595  # the limit is used, not just respected
    # every 429 is counted; a request either got through, gave up, or is still retrying at the horizon
    q = r.requests
    assert m["api_rate_limited"] == int(q["retries"].sum()) > 0
    assert m["api_retries"] + m["api_retries_exhausted"] == m["api_rate_limited"]
    assert m["failed"] == m["api_retries_exhausted"] > 0
    assert m["requests"] == m["served"] + m["failed"] + m["dropped"] + m["in_flight"]
    assert np.all(q["retries"][q["status"] == 2] == 6)  # max_retries + 1 answers of 429 before giving up
    # in steady state a third of the offered load cannot be served
    assert m["failed"] / m["requests"] == pytest.approx(1 / 3, abs=0.02)


def test_a_limit_that_never_binds_changes_nothing() -> None:
    base = load_config_text(RPM, ["backends.api.rate_limit.rpm=null"])
    loose = load_config_text(RPM, ["backends.api.rate_limit.rpm=1000000", "backends.api.rate_limit.rpm_burst_s=60"])
    a, b = simulate(base, 0), simulate(loose, 0)
    for k in ("served", "cost_api_usd", "ttft_p95_s", "e2e_mean_s", "queue_wait_mean_s"):
        assert a.metrics[k] == pytest.approx(b.metrics[k], rel=1e-12), k
    assert b.metrics["api_rate_limited"] == 0


def test_tpm_limit_and_too_large_calls() -> None:
    # 15 calls/s x 150 tokens = 135k tokens/min offered against 90k TPM
    r = simulate(load_config_text(RPM, ["backends.api.rate_limit.rpm=null", "backends.api.rate_limit.tpm=90000"]), 0)
    q = r.requests
    ok = q["status"] == 1
    tokens = np.bincount((q["start_at"][ok] // 60).astype(np.int64), minlength=60)[:60] * 150
    # the TPM bucket holds a whole minute (tpm_burst_s = 60): by the end of minute k at most
    # 90k (the full bucket at t=0) + 90k x (k+1) tokens got through; once drained, 90k a minute plus one call
    assert np.all(np.cumsum(tokens) <= 90_000 + 90_000 * np.arange(1, 61))
    assert tokens[5:].max() <= 90_000 + 150 and tokens[5:].mean() >= 89_000
    assert r.metrics["api_rate_limited"] > 0
    # a call larger than the whole TPM bucket fails at once, without 429s
    big = simulate(load_config_text(RPM, ["backends.api.rate_limit.rpm=null", "backends.api.rate_limit.tpm=100"]), 0)
    assert big.metrics["served"] == 0 and big.metrics["api_rate_limited"] == 0
    assert big.metrics["failed"] == big.metrics["requests"]


def test_retries_are_reproducible() -> None:
    exp = load_config_text(RPM)
    a, b = simulate(exp, 1), simulate(exp, 1)
    assert a.metrics == b.metrics
    assert np.array_equal(a.requests["start_at"], b.requests["start_at"], equal_nan=True)


def test_backoff_doubles_with_mean_preserving_jitter() -> None:
    spec = RateLimitSpec(backoff_s=1.0, jitter=0.5, max_backoff_s=10.0)
    rng = np.random.default_rng(0)
    for k, mean in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 10.0)]:
        x = np.array([backoff_s(spec, k, rng) for _ in range(4000)])
        assert x.min() >= 0.5 * mean and x.max() <= 1.5 * mean
        assert x.mean() == pytest.approx(mean, rel=4 * 0.5 / np.sqrt(3) / np.sqrt(4000))
    assert backoff_s(RateLimitSpec(backoff_s=2.0, jitter=0.0), 3, rng) == 8.0


def test_bucket_answers() -> None:
    b = TokenBuckets(RateLimitSpec(rpm=60, tpm=600, rpm_burst_s=2, tpm_burst_s=60))
    assert b.acquire(0.0, 100) == ACCEPTED
    assert b.acquire(0.0, 100) == ACCEPTED  # burst of 2 requests
    assert b.acquire(0.0, 100) == LIMITED
    assert b.acquire(1.0, 100) == ACCEPTED  # 1 request/s refill
    assert b.acquire(1.0, 601) == TOO_LARGE
    assert b.acquire(100.0, 600) == ACCEPTED
    assert b.acquire(100.0, 10) == LIMITED  # TPM bucket empty


@settings(max_examples=60, deadline=None)
@given(
    rpm=st.floats(1, 3000),
    burst=st.floats(0.1, 60),
    gaps=st.lists(st.floats(0, 5), min_size=1, max_size=300),
    window=st.floats(1, 120),
)
def test_bucket_never_admits_more_than_capacity_plus_refill(
    rpm: float, burst: float, gaps: list[float], window: float
) -> None:
    b = TokenBuckets(RateLimitSpec(rpm=rpm, rpm_burst_s=burst))
    t = np.cumsum(gaps)
    ok = np.array([b.acquire(float(x), 1) == ACCEPTED for x in t])
    acc = t[ok]
    cap = max(1.0, rpm * burst / 60)
    for a in acc:
        inside = np.count_nonzero((acc >= a) & (acc <= a + window))
        assert inside <= cap + rpm / 60 * window + 1e-6
