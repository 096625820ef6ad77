"""The GPU catalog's first-principles iteration model and its calibration.

* The Hopper and Ampere kernel factors in backends/gpu/catalog.py are what the library's fit
  (backends/models/kernel_fit.py, run by benchmarks/calibrate_iteration.py) gives on Vidur's H100 and A100 kernel
  profiles (stage 1 is refitted here, its residuals are checked by tests/test_gpu_fidelity.py;
  stage 2, backends/models/serving_fit.py, is checked through its outcome below and by tests/test_calibrate.py).
* The calibrated H100 + Llama-3-8B preset replays vLLM v0.6.0's ShareGPT benchmark within 25% of the
  published mean TPOT at 2, 8 and 32 req/s (8, 9, 13 ms) and of its all-at-once throughput (37 req/s).
* Catalog sanity: KV capacity, tensor parallelism, cold-start defaults from calibration_facts.csv.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from backends.gpu.catalog import (
    EFFICIENCY,
    MODELS,
    catalog_problems,
    derived_cold_start_s,
    derived_iteration,
    derived_kv_tokens,
)
from backends.models.bench_results import read_bench_file
from backends.models.kernel_fit import family_profiles, fit_stage1
from backends.models.serving_fit import pool_with, simulate_point
from sim.config.backends import GpuPoolSpec

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "backends" / "models" / "published" / "vllm-v0.6.0_h100_llama-3-8b_sharegpt.csv"
PRESET = GpuPoolSpec(gpu="h100", model="llama-3-8b", max_batch=256, kv_policy="paged", kv_block_tokens=16)


@pytest.mark.parametrize("family", ["hopper", "ampere"])
def test_stage1_refit_reproduces_the_catalog_factors(family: str) -> None:
    eff, _ = fit_stage1(family_profiles(family), EFFICIENCY[family])
    cat = EFFICIENCY[family]
    assert eff.memory == pytest.approx(cat.memory, rel=2e-3)
    assert eff.kernel_s == pytest.approx(cat.kernel_s, rel=2e-2)
    assert eff.decode_compute == pytest.approx(cat.decode_compute, rel=2e-3)
    assert eff.prefill_compute == pytest.approx(cat.prefill_compute, rel=2e-3)
    assert eff.act_bytes_per_hidden == pytest.approx(cat.act_bytes_per_hidden, rel=1e-2)


def test_model_parameter_counts_follow_from_the_architecture() -> None:
    for m in MODELS.values():
        assert m.params_b is not None
        assert m.computed_params / 1e9 == pytest.approx(m.params_b, rel=0.02), m.name  # layers + embedding + head


def test_vllm_v060_h100_llama3_8b_tpot_within_12_percent() -> None:
    """The published ShareGPT points (backends/models/published), replayed with the catalog's Hopper factors."""
    pool = pool_with(PRESET, EFFICIENCY["hopper"])
    for i, p in enumerate(read_bench_file(PUBLISHED).points):
        sim = simulate_point(pool, p, i, "sharegpt", samples=4, seed=7000)
        pairs = [("throughput", sim.throughput_rps, p.throughput_rps)] if math.isinf(p.request_rate) else []
        pairs += [] if math.isinf(p.request_rate) else [("tpot", sim.tpot_ms, p.measured["mean_tpot_ms"])]
        for key, got, ref in pairs:
            assert ref is not None
            print(f"{key} @ {p.request_rate}: simulated {got:.2f}, vLLM {ref:g} ({got / ref - 1:+.1%})")
            # Deterministic (fixed seeds), so the bound guards the model, not sampling noise. Measured errors:
            # TPOT +0.4%, -4.3%, -9.6% at 2, 8, 32 req/s; the published TPOTs are rounded to 1 ms (+-4-6% at 8-13 ms),
            # so 12% is the worst model error plus that rounding. The all-at-once throughput is -18.8% (the prefill
            # burst that docs/calibration.md names as the model's known gap): 22% holds it, the old 25% held both.
            assert abs(got / ref - 1) <= (0.22 if key == "throughput" else 0.12), (key, p.request_rate)


def test_published_runs_replayed_as_configured_with_multistep() -> None:
    """The same engine replayed as the published runs were configured (--num-scheduler-steps 10, 8192 prompt
    tokens a prefill step; backends/models/published), with the catalog's Hopper factors (fitted replaying them
    with a scheduler that runs every iteration): every finite-rate TPOT of the ShareGPT and decode-heavy runs
    and both runs' all-at-once throughputs."""
    pool = pool_with(
        PRESET.model_copy(update={"num_scheduler_steps": 10, "max_prefill_tokens": 8192}), EFFICIENCY["hopper"]
    )
    points = [
        p
        for name in ("sharegpt", "decode-heavy")
        for p in read_bench_file(PUBLISHED.parent / f"vllm-v0.6.0_h100_llama-3-8b_{name}.csv").points
    ]
    for i, p in enumerate(points):
        sim = simulate_point(pool, p, i, "sharegpt", samples=4, seed=7000)
        if math.isinf(p.request_rate):
            key, got, ref, bound = "throughput", sim.throughput_rps, p.throughput_rps, 0.15
        else:
            key, got, ref, bound = "tpot", sim.tpot_ms, p.measured["mean_tpot_ms"], 0.12
        assert ref is not None
        print(f"{key} @ {p.request_rate}: simulated {got:.2f}, vLLM {ref:g} ({got / ref - 1:+.1%})")
        # measured: ShareGPT TPOT -8.2%, -10.0%, -4.5% at 2, 8, 32 req/s, decode-heavy -2.2%, -0.6% at 16, 32 req/s
        # (the published TPOTs are rounded to 1 ms: +-4-6%); throughputs -8.3% (ShareGPT), +4.5% (decode-heavy)
        assert abs(got / ref - 1) <= bound, (key, p.request_rate)


def test_kv_capacity_tensor_parallel_and_cold_start_defaults() -> None:
    spec = GpuPoolSpec(gpu="h100", model="llama-3-8b")
    # (80 GB * 0.9 - 2 GB) - 16.06 GB of weights, at 128 KiB per token (32 layers x 8 KV heads x 128 x 2 x 2 B)
    assert derived_kv_tokens(spec) == pytest.approx((80 * 0.9 - 2 - 16.06) * 1e9 / 131072, rel=1e-3)
    big = GpuPoolSpec(gpu="h100", model="llama-3-70b", tensor_parallel=1)
    assert any("tensor_parallel" in path for path, _ in catalog_problems(big))
    tp4 = GpuPoolSpec(gpu="h100", model="llama-3-70b", tensor_parallel=4)
    assert not catalog_problems(tp4) and derived_kv_tokens(tp4) > 100_000
    it1, it4 = (
        derived_iteration(GpuPoolSpec(gpu="h100", model="llama-3-70b", tensor_parallel=2)),
        derived_iteration(tp4),
    )
    assert it4.base < it1.base and it4.per_prefill_token < it1.per_prefill_token
    # fresh vLLM starts (calibration_facts.csv): 1.2 GB model 37.9 s, 61 GB model 47.4 s
    for gb, seconds in ((1.2, 37.9), (61.0, 47.4)):
        from backends.gpu.catalog import COLD_START_ENGINE_S, COLD_START_S_PER_GB

        assert COLD_START_ENGINE_S + COLD_START_S_PER_GB * gb == pytest.approx(seconds, abs=0.3)
    assert 38.0 < derived_cold_start_s(spec) < 45.0
    assert math.isfinite(derived_iteration(GpuPoolSpec(gpu="l40s", model="mistral-7b")).base)
