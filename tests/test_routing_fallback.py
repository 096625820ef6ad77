"""routing.fallback (none | api | cache) when a backend is down, retries run out, or the GPU pool fails a request;
by_class targets naming providers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.config.errors import ConfigError
from sim.engine.loading import load_config_text
from sim.engine.replication import simulate

BASE = """
name: fallback
seed: 4
horizon_h: 0.5
workload:
  arrivals: {kind: constant, mean_rps: 5}
  classes: [{name: a, share: 1.0, input_tokens: {dist: constant, value: 500},
             output_tokens: {dist: constant, value: 50}}]
routing: {policy: gpu_only, fallback: none, fallback_target: "api:backup"}
backends:
  apis:
    backup: {price_input_per_mtok_usd: 1.0, price_output_per_mtok_usd: 4.0}
  gpu_pool: {servers: 2}
"""


def metrics(*overrides: str) -> dict:
    m = simulate(load_config_text(BASE, overrides), 0).metrics
    assert m["requests"] == m["served"] + m["failed"] + m["dropped"] + m["in_flight"]
    return m


def test_gpu_pool_down_goes_to_the_fallback_api() -> None:
    never_ready = "backends.gpu_pool.cold_start_s={dist: constant, value: 100000}"
    initial_too = "backends.gpu_pool.initial_cold_start=true"  # the servers at t = 0 cold-start as well
    m = metrics(never_ready, initial_too)
    assert m["served"] == 0 and m["in_flight"] == m["requests"]  # no fallback: they wait for servers
    m = metrics(never_ready, initial_too, "routing.fallback=api")
    assert m["fallbacks"] == m["requests"]
    assert m["served_by_api"] == m["served"] == m["requests"] - m["in_flight"]  # in flight: still streaming
    assert m["uptime"] == 1.0  # the fallback provider is a healthy path


def test_gpu_failures_are_taken_over_by_the_fallback() -> None:
    tiny_kv = "backends.gpu_pool.kv_cache_tokens=100"  # every request is too large for the KV cache
    with pytest.raises(ConfigError, match="kv_cache_tokens"):  # without a fallback every request would fail
        load_config_text(BASE, [tiny_kv])
    m = metrics(tiny_kv, "routing.fallback=api")
    assert m["failed"] == 0 and m["fallbacks"] == m["requests"]
    assert m["served_by_api"] == m["requests"] - m["in_flight"]


def test_exhausted_retries_go_to_the_backup_provider() -> None:
    limited = ["routing.policy=api_only", "backends.api.rate_limit.rpm=120", "backends.api.rate_limit.max_retries=2"]
    none = metrics(*limited)
    assert none["failed"] == none["api_retries_exhausted"] > 0
    r = simulate(load_config_text(BASE, [*limited, "routing.fallback=api"]), 0)
    m, b = r.metrics, r.breakdown
    assert m["failed"] == 0
    assert m["fallbacks"] == m["api_retries_exhausted"] == none["api_retries_exhausted"]  # common random numbers
    # every fallback call is accepted and billed (answers still streaming at the horizon included)
    assert b["cost_api_usd.provider.backup"] == pytest.approx(m["fallbacks"] * (500 * 1.0 + 50 * 4.0) / 1e6)


def test_cache_fallback_answers_with_stale_or_nearest_responses() -> None:
    down = [
        "routing.policy=api_only",
        "backends.api.outages={mtbf_h: 0.0001, mttr_h: 10000}",
        "cache.response={enabled: true, capacity: 100000, ttl_s: 60, distinct_prompts: 500, zipf_s: 1.0}",
    ]
    none = metrics(*down)
    assert none["served"] == none["cache_hits"]
    m = metrics(*down, "routing.fallback=cache")
    assert m["degraded"] > 0
    assert m["served"] == m["cache_hits"] + m["degraded"]  # stale entries only
    assert m["failed"] == none["failed"] - m["degraded"]
    sem = metrics(*down, "routing.fallback=cache", "cache.semantic={enabled: true, hit_probability: 0.0}")
    assert sem["failed"] == 0 and sem["degraded"] == sem["requests"] - sem["cache_hits"] - sem["in_flight"]
    assert sem["availability"] == pytest.approx((sem["requests"] - sem["in_flight"]) / sem["requests"])


def test_by_class_targets_name_providers() -> None:
    text = BASE.replace(
        "  classes: [{name: a, share: 1.0, input_tokens: {dist: constant, value: 500},\n"
        "             output_tokens: {dist: constant, value: 50}}]",
        "  classes: [{name: a, share: 0.5}, {name: b, share: 0.5}]",
    )
    targets = "routing.by_class={a: 'api:backup', b: 'api_batch:backup'}"
    exp = load_config_text(text, ["routing.policy=by_class", targets])
    r = simulate(exp, 0)
    b = r.breakdown
    assert b["cost_api_usd.provider.api"] == 0.0
    assert b["cost_api_usd.provider.backup"] == pytest.approx(r.metrics["cost_api_usd"])
    assert r.metrics["served_by_api_batch"] == b["served.class.b"] > 0
    with pytest.raises(ConfigError, match="unknown API provider"):
        load_config_text(BASE, ["routing.fallback_target=api:nope"])
    with pytest.raises(ConfigError, match="unknown routing target"):
        load_config_text(text, ["routing.policy=by_class", "routing.by_class={a: gpu, b: 'cloud'}"])


@settings(max_examples=25, deadline=None)
@given(
    policy=st.sampled_from(["gpu_only", "api_only", "overflow", "by_class"]),
    fallback=st.sampled_from(["none", "api", "cache"]),
    rpm=st.one_of(st.none(), st.sampled_from([30.0, 120.0, 600.0])),
    mtbf_h=st.one_of(st.none(), st.sampled_from([0.02, 0.1])),
    semantic=st.booleans(),
    response=st.booleans(),
    servers=st.sampled_from([0, 1]),
    trigger=st.sampled_from(["queue", "slo"]),
)
def test_every_request_is_accounted_for_once(
    policy: str,
    fallback: str,
    rpm: float | None,
    mtbf_h: float | None,
    semantic: bool,
    response: bool,
    servers: int,
    trigger: str,
) -> None:
    text = BASE.replace(
        "  classes: [{name: a, share: 1.0, input_tokens: {dist: constant, value: 500},\n"
        "             output_tokens: {dist: constant, value: 50}}]",
        "  classes: [{name: a, share: 0.5, slo_ttft_s: 0.5}, {name: b, share: 0.5, priority: 1}]",
    )
    overrides = [
        "horizon_h=0.1",
        "workload.arrivals.mean_rps=20",
        f"routing.policy={policy}",
        "routing.by_class={a: 'api:backup', b: gpu}",
        f"routing.fallback={fallback}",
        f"routing.overflow.trigger={trigger}",
        "routing.overflow.target=api",
        f"backends.gpu_pool.servers={servers}",
        "backends.gpu_pool.max_batch=4",
        f"backends.api.rate_limit.rpm={'null' if rpm is None else rpm}",
        "backends.api.rate_limit.backoff_s=2",
        f"backends.api.outages.mtbf_h={'null' if mtbf_h is None else mtbf_h}",
        "backends.api.outages.mttr_h=0.01",
        f"cache.semantic={{enabled: {str(semantic).lower()}, hit_probability: 0.2, false_hit_rate: 0.5}}",
        f"cache.response={{enabled: {str(response).lower()}, capacity: 50, ttl_s: 30, distinct_prompts: 200}}",
    ]
    m = simulate(load_config_text(text, overrides), 0).metrics
    baseline = simulate(load_config_text(text, ["horizon_h=0.1", "workload.arrivals.mean_rps=20"]), 0).metrics
    assert m["requests"] == baseline["requests"]  # common random numbers: same arrivals; each folded once
    assert m["requests"] == m["served"] + m["failed"] + m["dropped"] + m["in_flight"]
    assert m["served"] >= m["cache_hits"] + m["semantic_hits"] + m["degraded"]
    assert m["served_by_api"] + m["served_by_gpu"] + m["cache_hits"] + m["semantic_hits"] + m["degraded"] == m["served"]
    if fallback == "none":
        assert m["fallbacks"] == 0 and m["degraded"] == 0
