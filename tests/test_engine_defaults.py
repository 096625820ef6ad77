"""A preset GPU pool behaves like vLLM out of the box: its resolved defaults are vLLM's (max_num_seqs 256,
max_num_batched_tokens by GPU class, block size 16, gpu_memory_utilization 0.9), and the servers present at
t = 0 start warm, so a short run shows no cold start in its TTFT."""

from __future__ import annotations

import pytest
from gpu_support import gpu_experiment

from backends.gpu.catalog import (
    ACTIVATION_RESERVE_GB,
    derived_cold_start_s,
    derived_kv_tokens,
    gpu_of,
    model_of,
    prefill_token_budget,
)
from sim.config.backends import GpuPoolSpec
from sim.config.experiment import Experiment
from sim.engine.replication import simulate

# vLLM's EngineArgs.get_batch_defaults for the OpenAI server: 8192 batched tokens on GPUs of >= 70 GiB whose
# name does not contain "a100", 2048 on the others
VLLM_BUDGET = {
    "h100": 8192,
    "h100-pcie": 8192,
    "h200": 8192,
    "b200": 8192,
    "mi300x": 8192,
    "a100-80gb": 2048,
    "a100-40gb": 2048,
    "l40s": 2048,
    "l4": 2048,
    "a10g": 2048,
}


@pytest.mark.parametrize("gpu", sorted(VLLM_BUDGET))
def test_a_preset_pool_resolves_to_vllms_defaults(gpu: str) -> None:
    spec = GpuPoolSpec.model_validate({"gpu": gpu})
    assert spec.max_batch == 256  # max_num_seqs
    assert spec.kv_block_tokens == 16  # block_size
    assert spec.gpu_memory_utilization == 0.9
    assert spec.kv_policy == "paged"
    assert prefill_token_budget(spec) == VLLM_BUDGET[gpu]  # max_num_batched_tokens
    # the derived KV capacity spends 90% of the GPU's memory less the activation reserve and the weights
    g, m = gpu_of(spec), model_of(spec)
    free = (g.memory_gb * 0.9 - ACTIVATION_RESERVE_GB) * 1e9 - m.weight_bytes("bf16")
    assert derived_kv_tokens(spec) == int(free // m.kv_bytes_per_token("auto"))


def test_the_budget_rule_on_user_gpus_and_explicit_values() -> None:
    def user_gpu(name: str, memory_gb: float) -> GpuPoolSpec:
        hw = {"name": name, "memory_gb": memory_gb, "hbm_tb_s": 3.0, "bf16_tflops": 900.0}
        return GpuPoolSpec.model_validate({"gpu": {**hw, "price_per_gpu_hour_usd": 2.0}})

    assert prefill_token_budget(user_gpu("big", 96)) == 8192
    assert prefill_token_budget(user_gpu("big", 75.2)) == 8192  # 70 GiB = 75.16 GB
    assert prefill_token_budget(user_gpu("small", 75.1)) == 2048
    assert prefill_token_budget(user_gpu("my-A100-96", 96)) == 2048  # vLLM excludes A100 by name
    explicit = GpuPoolSpec.model_validate({"gpu": "l4", "max_prefill_tokens": 512})
    assert prefill_token_budget(explicit) == 512
    assert prefill_token_budget(GpuPoolSpec.model_validate({"max_prefill_tokens": None})) is None
    # half the memory for the engine: the KV capacity follows gpu_memory_utilization
    half = GpuPoolSpec.model_validate({"gpu_memory_utilization": 0.5})
    assert derived_kv_tokens(half) < derived_kv_tokens(GpuPoolSpec())


def run(pool: dict, rate: float = 2.0, horizon_h: float = 0.05, classes: list | None = None) -> dict:
    return simulate(gpu_experiment(rate, horizon_h, pool, classes), 0).metrics


@pytest.mark.parametrize("gpu", ["h100", "l40s"])
def test_the_engine_uses_the_resolved_budget(gpu: str) -> None:
    """`auto` reaches the batch engine: the default run equals one with vLLM's value set explicitly."""
    classes = [
        {
            "name": "long",
            "input_tokens": {"dist": "constant", "value": 6000},
            "output_tokens": {"dist": "geometric", "mean": 20},
        }
    ]
    default = run({"servers": 1, "gpu": gpu}, rate=3.0, classes=classes)
    explicit = run({"servers": 1, "gpu": gpu, "max_prefill_tokens": VLLM_BUDGET[gpu]}, rate=3.0, classes=classes)
    whole = run({"servers": 1, "gpu": gpu, "max_prefill_tokens": None}, rate=3.0, classes=classes)
    assert default == explicit
    assert default["ttft_mean_s"] != whole["ttft_mean_s"]  # 6000-token prompts: chunking changes TTFT


def test_servers_present_at_t0_start_warm() -> None:
    """1 H100, 2 req/s for 3 minutes: warm, TTFT is an iteration or two; with initial_cold_start the arrivals
    of the first C = 40.2 s (the derived cold start) wait for it, mean TTFT ~ C/H x C/2."""
    cold_s = derived_cold_start_s(GpuPoolSpec())
    assert 39.0 < cold_s < 41.0
    warm = run({"servers": 1})
    assert warm["ttft_p99_s"] < 0.1  # a cold start would put ~22% of the requests 0-40 s late
    cold = run({"servers": 1, "initial_cold_start": True})
    horizon_s = 0.05 * 3600
    expected = cold_s / horizon_s * cold_s / 2  # the share arriving during the start x its mean wait
    # the count arriving during the start is Poisson(80): sd 11%; 35% is about 3 sd
    assert cold["ttft_mean_s"] == pytest.approx(expected, rel=0.35)
    assert cold["ttft_p99_s"] > 0.5 * cold_s
    # later starts (after a repair) still pay the cold start: tests/test_gpu_failures.py's uptime check


def test_a_named_pool_gets_the_same_defaults() -> None:
    exp = Experiment.model_validate({"backends": {"gpu_pools": {"big": {"gpu": "h200"}, "small": {"gpu": "l4"}}}})
    big, small = exp.backends.gpu_pools["big"], exp.backends.gpu_pools["small"]
    assert (big.max_batch, prefill_token_budget(big), big.kv_block_tokens) == (256, 8192, 16)
    assert (small.max_batch, prefill_token_budget(small), small.initial_cold_start) == (256, 2048, False)
