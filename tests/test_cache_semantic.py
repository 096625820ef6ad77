"""The semantic cache: hit probability (direct or from a similarity threshold), false hits, lookup latency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backends.cache.semantic import semantic_rates
from sim.core.request_block import FLAG_SEMANTIC_FALSE, PATH_SEMANTIC
from sim.engine.loading import load_config_text
from sim.engine.replication import simulate

BASE = """
name: semantic
seed: 8
horizon_h: 1
workload:
  arrivals: {kind: constant, mean_rps: 20}
cache:
  semantic: {enabled: true, hit_probability: 0.3, false_hit_rate: 0.1, latency_s: 0.05}
routing: {policy: api_only}
output: {requests: true}
"""


def within(x: float, p: float, n: int, k: float = 4.0) -> bool:
    return abs(x - p) < k * math.sqrt(p * (1 - p) / n)


def test_direct_hit_probability_and_false_hits() -> None:
    m = simulate(load_config_text(BASE), 0).metrics
    n = m["requests"]
    assert within(m["semantic_hits"] / n, 0.3, n)
    assert within(m["semantic_false_hits"] / m["semantic_hits"], 0.1, m["semantic_hits"])
    assert m["semantic_false_hit_rate"] == m["semantic_false_hits"] / n
    assert m["served_by_api"] + m["semantic_hits"] == m["served"]
    assert m["cache_hits"] == 0  # the semantic cache is counted on its own


def test_semantic_cache_sees_only_exact_misses() -> None:
    exact = ["cache.response.enabled=true", "cache.response.capacity=2000", "cache.response.distinct_prompts=50000"]
    m = simulate(load_config_text(BASE, exact), 0).metrics
    misses = m["requests"] - m["cache_hits"]
    assert m["cache_hits"] > 0
    assert within(m["semantic_hits"] / misses, 0.3, misses)


@pytest.mark.parametrize("threshold", [0.85, 0.92])
def test_threshold_model_matches_its_closed_form(threshold: float) -> None:
    exp = load_config_text(
        BASE, ["cache.semantic.hit_probability=null", f"cache.semantic.similarity_threshold={threshold}"]
    )
    hit, false_share = semantic_rates(exp.cache.semantic)
    m = simulate(exp, 0).metrics
    n = m["requests"]
    assert within(m["semantic_hits"] / n, hit, n)
    assert within(m["semantic_false_hits"] / m["semantic_hits"], false_share, m["semantic_hits"])


def test_a_higher_threshold_hits_a_subset_with_fewer_false_hits() -> None:
    lo = load_config_text(BASE, ["cache.semantic.hit_probability=null", "cache.semantic.similarity_threshold=0.8"])
    hi = load_config_text(BASE, ["cache.semantic.hit_probability=null", "cache.semantic.similarity_threshold=0.9"])
    a, b = simulate(lo, 0), simulate(hi, 0)
    hit_a = a.requests["path"] == PATH_SEMANTIC
    hit_b = b.requests["path"] == PATH_SEMANTIC
    assert np.all(hit_a[hit_b]) and hit_b.sum() < hit_a.sum()  # common random numbers across thresholds
    false_a = (a.requests["flags"] & FLAG_SEMANTIC_FALSE) != 0
    false_b = (b.requests["flags"] & FLAG_SEMANTIC_FALSE) != 0
    assert false_b.sum() / hit_b.sum() < false_a.sum() / hit_a.sum()


def test_lookup_latency_is_paid_by_hits_and_misses() -> None:
    r = simulate(load_config_text(BASE), 0)
    q = r.requests
    hit = q["path"] == PATH_SEMANTIC
    assert np.allclose(q["first_token_at"][hit] - q["arrival_at"][hit], 0.05)
    miss = ~hit
    assert np.allclose(q["start_at"][miss] - q["arrival_at"][miss], 0.05)  # the API call starts after the lookup
    assert r.metrics["cost_api_usd"] == pytest.approx(q["cost_usd"][miss].sum())
    assert q["cost_usd"][hit].sum() == 0.0
