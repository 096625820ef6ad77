"""GPU and model catalogs, and the iteration-time model derived from them.

Decode is memory-bound: every iteration reads the weights once (base) and each sequence's KV cache
(per_kv_token); prefill and per-sequence decode work are compute-bound (2 FLOPs per parameter per token).
Tensor parallelism splits weights, KV and FLOPs across GPUs and adds an all-reduce per layer.
The efficiency factors are per GPU family (see EFFICIENCY and docs/calibration.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.config.backends import GpuPoolSpec, IterationSpec


@dataclass(frozen=True)
class Gpu:
    name: str
    family: str
    memory_gb: float  # HBM capacity, GB (1e9 bytes)
    hbm_tb_s: float  # HBM bandwidth, TB/s
    bf16_tflops: float  # dense bf16 tensor TFLOP/s
    nvlink_gb_s: float  # per-GPU NVLink bandwidth, GB/s (0: PCIe only)
    price_per_hour_usd: float  # default rental price per GPU-hour
    price_source: str


@dataclass(frozen=True)
class Model:
    name: str
    params_b: float  # parameters, billions
    layers: int
    hidden: int
    kv_heads: int
    head_dim: int
    bytes_per_param: float = 2.0

    @property
    def weight_bytes(self) -> float:
        return self.params_b * 1e9 * self.bytes_per_param

    @property
    def kv_bytes_per_token(self) -> float:
        return 2.0 * self.layers * self.kv_heads * self.head_dim * 2.0  # K and V, bf16


GPUS: dict[str, Gpu] = {
    g.name: g
    for g in [
        Gpu("h100", "hopper", 80, 3.35, 989, 900, 2.69, "tier-2 cloud on-demand, calibration_facts.csv (2.49-2.99)"),
        Gpu("h200", "hopper", 141, 4.8, 989, 900, 3.50, "tier-2 cloud on-demand list prices, 2025-2026"),
        Gpu("a100-80gb", "ampere", 80, 2.04, 312, 600, 1.80, "tier-2 cloud on-demand list prices, 2025-2026"),
        Gpu("l40s", "ada", 48, 0.864, 362, 0, 1.00, "tier-2 cloud on-demand list prices, 2025-2026"),
    ]
}
GPU_ALIASES = {"a100": "a100-80gb", "a100_80gb": "a100-80gb", "h100-sxm": "h100"}

MODELS: dict[str, Model] = {
    m.name: m
    for m in [
        Model("llama-3-8b", 8.03, 32, 4096, 8, 128),
        Model("llama-3-70b", 70.6, 80, 8192, 8, 128),
        Model("mistral-7b", 7.24, 32, 4096, 8, 128),
        Model("qwen2.5-32b", 32.8, 64, 5120, 8, 128),
        Model("llama-2-7b", 6.74, 32, 4096, 32, 128),
    ]
}


@dataclass(frozen=True)
class Efficiency:
    memory: float  # achieved fraction of HBM bandwidth when streaming weights and KV
    compute: float  # achieved fraction of dense bf16 FLOP/s in prefill / batched decode GEMMs
    overhead_s: float  # fixed per-iteration cost: scheduling, sampling, kernel launches
    per_seq_s: float  # per-sequence CPU-side cost per iteration (sampling, detokenisation)
    allreduce_s: float  # latency of one all-reduce (tensor parallel), per layer, twice per layer


EFFICIENCY: dict[str, Efficiency] = {
    "hopper": Efficiency(memory=0.75, compute=0.55, overhead_s=0.0015, per_seq_s=0.00004, allreduce_s=8e-6),
    "ampere": Efficiency(memory=0.75, compute=0.55, overhead_s=0.0015, per_seq_s=0.00004, allreduce_s=10e-6),
    "ada": Efficiency(memory=0.75, compute=0.55, overhead_s=0.0015, per_seq_s=0.00004, allreduce_s=25e-6),
}

GPU_MEMORY_UTILIZATION = 0.90  # vLLM's default share of HBM it manages
ACTIVATION_RESERVE_GB = 2.0  # per GPU, for activations and CUDA graphs


def gpu(name: str) -> Gpu:
    return GPUS[GPU_ALIASES.get(name, name)]


def catalog_problems(spec: GpuPoolSpec) -> list[tuple[str, str]]:
    problems = []
    gname = GPU_ALIASES.get(spec.gpu, spec.gpu)
    if gname not in GPUS:
        problems.append(("backends.gpu_pool.gpu", f"unknown GPU {spec.gpu!r}; known: {', '.join(sorted(GPUS))}"))
    if spec.model not in MODELS:
        problems.append(
            ("backends.gpu_pool.model", f"unknown model {spec.model!r}; known: {', '.join(sorted(MODELS))}")
        )
    if problems:
        return problems
    if spec.iteration_s is not None and spec.iteration_s.base + spec.iteration_s.per_seq <= 0:
        problems.append(("backends.gpu_pool.iteration_s", "base + per_seq must be > 0 (iterations take time)"))
    if spec.kv_cache_tokens is None and derived_kv_tokens(spec) < 1:
        problems.append(
            (
                "backends.gpu_pool.tensor_parallel",
                f"model {spec.model} does not fit on {spec.tensor_parallel} x {spec.gpu}: raise tensor_parallel",
            )
        )
    return problems


def derived_iteration(spec: GpuPoolSpec) -> IterationSpec:
    g, m, tp = gpu(spec.gpu), MODELS[spec.model], spec.tensor_parallel
    eff = EFFICIENCY[g.family]
    bw = g.hbm_tb_s * 1e12 * eff.memory * tp
    flops = g.bf16_tflops * 1e12 * eff.compute * tp
    allreduce = 2 * m.layers * eff.allreduce_s if tp > 1 else 0.0
    base = m.weight_bytes / bw + eff.overhead_s + allreduce
    flop_per_token = 2.0 * m.params_b * 1e9
    return IterationSpec(
        base=base,
        per_seq=eff.per_seq_s + flop_per_token / flops,
        per_prefill_token=flop_per_token / flops,
        per_kv_token=m.kv_bytes_per_token / bw,
    )


def derived_kv_tokens(spec: GpuPoolSpec) -> int:
    g, m, tp = gpu(spec.gpu), MODELS[spec.model], spec.tensor_parallel
    free = (g.memory_gb * GPU_MEMORY_UTILIZATION - ACTIVATION_RESERVE_GB) * 1e9 * tp - m.weight_bytes
    return int(max(free, 0.0) // m.kv_bytes_per_token)


def iteration_model(spec: GpuPoolSpec) -> IterationSpec:
    return spec.iteration_s if spec.iteration_s is not None else derived_iteration(spec)


def kv_capacity(spec: GpuPoolSpec) -> int:
    return spec.kv_cache_tokens if spec.kv_cache_tokens is not None else derived_kv_tokens(spec)
