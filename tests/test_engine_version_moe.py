"""The two terms fitted on the LambdaLabs vLLM runs (docs/calibration.md, "Out-of-corner validation"):

* `engine_version` (pool key): vllm-0.6, the default, is today's model bit for bit; vllm-0.5 adds the engine's host
  cost per step and per sequence and step to the derived `base`/`per_schedule` and `per_seq`, exactly; more host
  cost never makes a replay faster; `capsim validate` refuses what vLLM 0.5 cannot be (multi-step, V1) and the
  combinations where the term would not apply (explicit iteration_s, a profile).
* `moe_compute` (family factor): None is the model before it (routed experts at the dense GEMMs' rates); a dense
  model ignores it; the routed experts' FLOPs are charged at its rate, exactly; a lower rate never makes a MoE
  replay faster.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from test_config_errors import VALID, assert_user_error, capsim

from backends.gpu import efficiency as eff_mod
from backends.gpu.catalog import derived_iteration, model_of, pool_efficiency
from backends.gpu.engine_bench import serve_benchmark
from backends.models.precision import compute_rate
from sim.config.backends import GpuPoolSpec


def _pool(**kw: object) -> GpuPoolSpec:
    return GpuPoolSpec.model_validate({"gpu": "h100", "model": "llama-3-8b", "max_prefill_tokens": 2048, **kw})


def _replay(spec: GpuPoolSpec, n: int = 60) -> tuple[float, float]:
    rng = np.random.default_rng(7)
    ins, outs = rng.integers(20, 600, n), rng.integers(2, 300, n)
    r = serve_benchmark(spec, ins, outs, math.inf, np.random.default_rng(0))
    return r.tpot_mean_s, r.throughput_rps


def test_the_default_engine_is_todays_model_bit_for_bit() -> None:
    assert GpuPoolSpec().engine_version == "vllm-0.6"
    assert eff_mod.ENGINE_HOST_COST["vllm-0.6"] == eff_mod.EngineHostCost(0.0, 0.0)
    for kw in ({}, {"model": "mixtral-8x7b", "tensor_parallel": 2}, {"gpu": "a100-80gb", "quantization": "fp8"}):
        assert derived_iteration(_pool(**kw)) == derived_iteration(_pool(engine_version="vllm-0.6", **kw))
    assert _replay(_pool()) == _replay(_pool(engine_version="vllm-0.6"))


@pytest.mark.parametrize("kw", [{}, {"tensor_parallel": 4, "model": "llama-3-70b"}, {"model": "mixtral-8x7b"}])
def test_vllm_05_adds_exactly_its_host_cost(kw: dict) -> None:
    new, old = derived_iteration(_pool(engine_version="vllm-0.5", **kw)), derived_iteration(_pool(**kw))
    host = eff_mod.ENGINE_HOST_COST["vllm-0.5"]
    assert host.overhead_s > 0.0 and host.per_seq_s > 0.0
    assert new.base - old.base == pytest.approx(host.overhead_s, rel=1e-9)
    assert new.per_schedule - old.per_schedule == pytest.approx(host.overhead_s, rel=1e-9)
    assert new.per_seq - old.per_seq == pytest.approx(host.per_seq_s, rel=1e-9)
    assert (new.per_prefill_token, new.per_kv_token) == (old.per_prefill_token, old.per_kv_token)


def test_vllm_05_with_zero_host_cost_is_todays_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(eff_mod.ENGINE_HOST_COST, "vllm-0.5", eff_mod.EngineHostCost(0.0, 0.0))
    assert derived_iteration(_pool(engine_version="vllm-0.5")) == derived_iteration(_pool())


def test_more_host_cost_never_serves_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    results = []
    for per_seq_s in (0.0, 50e-6, 200e-6):
        monkeypatch.setitem(eff_mod.ENGINE_HOST_COST, "vllm-0.5", eff_mod.EngineHostCost(1e-3, per_seq_s))
        results.append(_replay(_pool(engine_version="vllm-0.5")))
    tpots, rates = zip(*results, strict=True)
    assert tpots[0] < tpots[1] < tpots[2] and rates[0] > rates[1] > rates[2]


def _with_moe_compute(spec: GpuPoolSpec, value: float | None) -> eff_mod.Efficiency:
    return dataclasses.replace(pool_efficiency(spec), moe_compute=value)


def test_moe_compute_none_is_the_dense_rates_and_dense_models_ignore_it() -> None:
    dense = _pool(tensor_parallel=2, model="llama-3-70b")
    for value in (None, 0.05, 1.0):
        assert derived_iteration(dense, _with_moe_compute(dense, value)) == derived_iteration(
            dense, _with_moe_compute(dense, None)
        )
    moe = _pool(model="mixtral-8x7b", tensor_parallel=2)
    eff = _with_moe_compute(moe, None)
    plain = derived_iteration(moe, eff)
    m, tp = model_of(moe), 2
    rate = compute_rate("bf16", 989.0, 1979.0)
    flops = rate.tflops * 1e12
    restated = 2.0 * m.flop_params / (tp * flops * eff.decode_compute)
    act = m.layers * eff.act_bytes_per_hidden * m.hidden / (3.35e12 * eff.memory)
    comm = 2 * m.layers * 2.0 * (tp - 1) / tp * m.hidden * 2.0 / (900e9 * eff.interconnect)
    assert plain.per_seq == pytest.approx(restated + act + eff.per_seq_s + comm, rel=1e-12)


def test_moe_compute_charges_the_routed_flops_and_is_monotone() -> None:
    spec = _pool(model="mixtral-8x7b", tensor_parallel=2)
    m = model_of(spec)
    eff = _with_moe_compute(spec, None)
    plain = derived_iteration(spec, eff)
    routed = 2.0 * m.moe_layers * m.experts_per_token * m.expert_params / (2 * 989e12)
    its = {}
    for value in (0.1, 0.2, 0.5):
        it = derived_iteration(spec, _with_moe_compute(spec, value))
        its[value] = it
        assert it.per_seq - plain.per_seq == pytest.approx(routed * (1 / value - 1 / eff.decode_compute), rel=1e-9)
        assert it.per_prefill_token - plain.per_prefill_token == pytest.approx(
            routed * (1 / value - 1 / eff.prefill_compute), rel=1e-9
        )
        assert (it.base, it.per_kv_token, it.per_schedule) == (plain.base, plain.per_kv_token, plain.per_schedule)
    assert its[0.1].per_seq > its[0.2].per_seq > its[0.5].per_seq


def test_a_slower_expert_kernel_never_serves_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _pool(model="mixtral-8x7b", tensor_parallel=2)
    tpots = []
    for value in (0.5, 0.2, 0.1):
        monkeypatch.setitem(
            eff_mod.EFFICIENCY, "hopper", dataclasses.replace(eff_mod.EFFICIENCY["hopper"], moe_compute=value)
        )
        tpots.append(_replay(spec)[0])
    assert tpots[0] < tpots[1] < tpots[2]


def test_engine_version_is_checked_at_validate() -> None:
    proc = capsim("validate", str(VALID), "--set", "backends.gpu_pool.engine_version=vllm-0.4")
    assert_user_error(proc, "backends.gpu_pool.engine_version (line ", "'vllm-0.6'", "'vllm-0.5'")
    text = "name: x\nbackends:\n  gpu_pool:\n    engine_version: vllm-0.5\n    num_scheduler_steps: 10\n"
    proc = capsim("validate", "-", stdin=text)
    assert_user_error(proc, "backends.gpu_pool.engine_version (line 4):", "multi-step")


def test_engine_version_refusals() -> None:
    from backends.gpu.engine_checks import engine_problems

    cases = {
        "multi-step": {"num_scheduler_steps": 10},
        "V1": {"scheduler": "v1"},
        "iteration_s is explicit": {"iteration_s": {"base": 0.01}},
    }
    for text, kw in cases.items():
        problems = engine_problems(_pool(engine_version="vllm-0.5", **kw))
        assert [p for p, msg in problems if text in msg] == ["backends.gpu_pool.engine_version"], problems
    assert engine_problems(_pool(engine_version="vllm-0.5")) == []
    assert engine_problems(_pool(num_scheduler_steps=10)) == []
