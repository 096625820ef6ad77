"""The exact response cache: LRU hit rate against Che's approximation for Zipf popularity, and TTL/staleness."""

from __future__ import annotations

import numpy as np
import pytest

from backends.cache.response import ResponseCache
from sim.config.cache import ResponseCacheSpec
from sim.engine.loading import load_config_text
from sim.engine.replication import simulate
from workloads.popularity import ZipfPopularity


def che_hit_rate(p: np.ndarray, capacity: int) -> float:
    """Che's approximation: the characteristic time T_C solves sum_k (1 - exp(-p_k T)) = C."""
    from scipy.optimize import brentq

    def filled(t: float) -> float:
        return float(np.sum(-np.expm1(-p * t))) - capacity

    hi = 1.0
    while filled(hi) < 0:
        hi *= 2
    t_c = brentq(filled, 0.0, hi, xtol=1e-9 * hi)
    return float(np.sum(p * -np.expm1(-p * t_c)))


def lru_hit_rate(n: int, s: float, capacity: int, requests: int, warmup: int, seed: int) -> float:
    zipf = ZipfPopularity(n, s)
    keys = zipf.sample(np.random.default_rng(seed), requests)
    cache = ResponseCache(ResponseCacheSpec(enabled=True, capacity=capacity, ttl_s=1e12))
    hits = cache.lookup_block(keys, np.arange(requests, dtype=np.float64))
    return float(hits[warmup:].mean())


@pytest.mark.parametrize(("s", "capacities"), [(0.8, [20, 200, 2000, 8000]), (1.1, [10, 100, 1000])])
def test_lru_hit_rate_matches_che_within_2_points(s: float, capacities: list[int]) -> None:
    n = 20_000
    p = ZipfPopularity(n, s).probabilities(np.arange(1, n + 1))
    for c in capacities:
        sim = lru_hit_rate(n, s, c, requests=150_000, warmup=50_000, seed=c)
        che = che_hit_rate(p, c)
        assert abs(sim - che) < 0.02, (s, c, sim, che)


def test_cache_hit_rate_metric_through_the_simulator() -> None:
    text = """
name: che
seed: 2
horizon_h: 2
warmup_h: 1
workload:
  arrivals: {kind: constant, mean_rps: 20}
cache:
  response: {enabled: true, capacity: 500, ttl_s: 1.0e9, distinct_prompts: 20000, zipf_s: 0.8}
routing: {policy: api_only}
"""
    m = simulate(load_config_text(text), 0).metrics
    assert m["cache_hit_rate"] == m["cache_hits"] / m["requests"]
    p = ZipfPopularity(20_000, 0.8).probabilities(np.arange(1, 20_001))
    assert abs(m["cache_hit_rate"] - che_hit_rate(p, 500)) < 0.02


def test_ttl_expiry_marks_stale_answers() -> None:
    cache = ResponseCache(ResponseCacheSpec(enabled=True, capacity=10, ttl_s=5.0))
    keys = np.array([1, 1, 1, 2, 1])
    times = np.array([0.0, 1.0, 6.0, 7.0, 8.0])
    hits = cache.lookup_block(keys, times)
    assert hits.tolist() == [False, True, False, False, True]  # TTL counts from insertion; re-inserted at 6
    assert cache.stale.tolist() == [False, False, True, False, False]
