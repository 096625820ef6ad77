"""benchmarks/feature_effects.py: every variant is a valid experiment that turns on what its row says."""

from __future__ import annotations

import pytest

from benchmarks.feature_effects import BY_KEY, CONFIG, VARIANTS, WINDOW, overrides, plan_command
from sim.engine.loading import load_config


@pytest.fixture(scope="module")
def experiments():
    return {v.key: load_config(CONFIG, overrides(v)) for v in VARIANTS}


def test_every_variant_validates_and_measures_the_peak_hour(experiments):
    for exp in experiments.values():
        peak = int(exp.workload.arrivals.peak_hour)
        assert exp.warmup_h <= peak and peak + 1 <= exp.horizon_h  # peak_ttft_p95_s is defined
        assert exp.seed == load_config(CONFIG).seed  # common random numbers


def test_each_variant_turns_on_its_feature(experiments):
    base = experiments["baseline"].backends.gpu_pool
    assert base == load_config(CONFIG).backends.gpu_pool
    assert experiments["v1"].backends.gpu_pool.scheduler == "v1"
    assert experiments["v1"].backends.gpu_pool.max_prefill_tokens == base.max_prefill_tokens
    for key in ("sessions", "sessions-cache", "sessions-affinity"):
        assert experiments[key].workload.sessions is not None
    assert not experiments["sessions"].backends.gpu_pool.prefix_cache.enabled
    assert experiments["sessions-cache"].backends.gpu_pool.prefix_cache.enabled
    affinity = experiments["sessions-affinity"].backends.gpu_pool
    assert affinity.prefix_cache.enabled and affinity.server_routing.policy == "prefix_affinity"
    spec = experiments["spec"].backends.gpu_pool.speculative
    assert spec is not None and spec.draft == "ngram" and spec.k == 3


def test_disaggregation_splits_the_same_gpus(experiments):
    b = experiments["pd"].backends
    pools = b.pools()
    assert [b.pool_role(n) for n in pools] == ["prefill", "decode"]
    base = experiments["baseline"].backends.gpu_pool
    assert sum(p.servers for p in pools.values()) == base.servers
    for p in pools.values():
        assert (p.gpu, p.model, p.max_batch, p.price_per_server_hour_usd) == (
            base.gpu,
            base.model,
            base.max_batch,
            base.price_per_server_hour_usd,
        )
    assert BY_KEY["pd"].servers({"backends.gpu_pools.prefill.servers": 1, "backends.gpu_pools.decode.servers": 2}) == 3


def test_plan_command_varies_the_variants_pools():
    for v in VARIANTS:
        cmd = plan_command(v, 2)
        assert [cmd[i + 1] for i, c in enumerate(cmd) if c == "--vary"] == list(v.vary)
        assert [cmd[i + 1] for i, c in enumerate(cmd) if c == "--set"] == [*WINDOW, *v.overrides]
