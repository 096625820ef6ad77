"""GPU and model catalogs, and the iteration-time, KV-capacity and cold-start models derived from them.

First principles (docs/calibration.md has the derivation, the fit and its residuals):

* decode is memory-bound: every iteration streams the weights once (`base`) and each sequence's KV cache
  (`per_kv_token` per token of context); each extra sequence adds its share of the GEMM FLOPs at the
  (low) efficiency of small-batch GEMMs, plus activation traffic that tensor parallelism does not split
  (norms, residual adds) and a per-sequence CPU cost (`per_seq`);
* prefill is compute-bound: 2 FLOPs per streamed parameter per prompt token (`per_prefill_token`);
* tensor parallelism splits weights, KV (down to one KV head per GPU) and FLOPs over `tp` GPUs and adds two
  all-reduces per layer: a latency per all-reduce growing with log2(tp), plus 2 (tp-1)/tp x hidden x 2 bytes
  per token at the all-reduce's achieved share of the NVLink or PCIe bandwidth.

The efficiency factors (`EFFICIENCY`, backends/gpu/efficiency.py) are per GPU family, never per (GPU, model)
pair. Hopper's kernel factors were fitted by benchmarks/calibrate_iteration.py on Vidur's H100 profiles of
Llama-2-7B and Llama-2-70B (TP 1-8), Ampere's on Vidur's A100 profile of Llama-3-8B (TP 1-8); the engine's CPU
costs and the decode attention's bandwidth share on vLLM v0.6.0's published H100 + Llama-3-8B serving numbers.
Ada, Blackwell, CDNA3 and user GPUs have no profile here and carry Hopper's factors (their specifications still
differ: bandwidth, FLOP/s, memory, interconnect).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backends.gpu.efficiency import EFFICIENCY as EFFICIENCY
from backends.gpu.efficiency import (
    ENGINE_HOST_COST,
    MULTISTEP_PREFILL_PROMPT_S,
    Efficiency,
    allreduce_latency_s,
    efficiency,
)
from backends.gpu.efficiency import MEASURED_FAMILIES as MEASURED_FAMILIES
from backends.gpu.efficiency import efficiency_note as efficiency_note
from backends.models.library import SHIPPED, shipped_model
from backends.models.moe import expected_experts
from backends.models.precision import compute_rate, weight_bytes_per_param
from backends.models.profile import ProfileError, read_profile
from backends.models.spec import ModelConfigError, ModelSpec, load_hf_config
from sim.config.backends import GpuPoolSpec, IterationSpec
from sim.config.speculative import NGRAM


@dataclass(frozen=True)
class Gpu:
    name: str
    family: str
    memory_gb: float  # HBM capacity, GB (1e9 bytes)
    hbm_tb_s: float  # HBM bandwidth, TB/s
    bf16_tflops: float  # dense bf16 tensor TFLOP/s
    nvlink_gb_s: float  # per-GPU NVLink bandwidth, GB/s (0: PCIe only)
    price_per_gpu_hour_usd: float  # default rental price per GPU-hour (a server costs this x tensor_parallel)
    price_source: str  # where the price comes from
    price_as_of: str  # when that source stated it
    pcie_gb_s: float = 32.0  # PCIe 4.0/5.0 x16 one direction, used when there is no NVLink
    fp8_tflops: float = 0.0  # dense FP8 tensor TFLOP/s (0: no FP8 tensor cores)

    @property
    def interconnect_gb_s(self) -> float:
        return self.nvlink_gb_s if self.nvlink_gb_s > 0 else self.pcie_gb_s


# Rental prices: on-demand at specialty ("tier-2") clouds, per GPU-hour, each with its source and date. The H100
# row is calibration_facts.csv's (tier-2 clouds, H100 on-demand 2.49-2.99 USD/GPU-h, digiterialabs.com Q1-2026
# note, secondary source); the others are read off public price surveys (numbers quoted with citation).
GPUS: dict[str, Gpu] = {
    g.name: g
    for g in [
        Gpu(
            "h100", "hopper", 80, 3.35, 989, 900, 2.69,
            "tier-2 cloud on-demand band 2.49-2.99 USD/GPU-h (digiterialabs.com note, via calibration_facts.csv)",
            "2026-Q1", fp8_tflops=1979,
        ),
        Gpu(
            "h200", "hopper", 141, 4.8, 989, 900, 3.50,
            "low end of the specialty-cloud on-demand band 3.50-4.50 USD/GPU-h"
            " (mercatus-ai.com/blog/cloud-gpu-pricing)",
            "2026-05", fp8_tflops=1979,
        ),
        Gpu(
            "a100-80gb", "ampere", 80, 2.039, 312, 600, 1.30,
            "middle of the specialty-cloud on-demand band 1.10-1.50 USD/GPU-h (mercatus-ai.com/blog/cloud-gpu-pricing)",
            "2026-05",
        ),
        Gpu(
            "l40s", "ada", 48, 0.864, 362, 0, 1.00,
            "within the on-demand band 0.86 (RunPod) - 1.29 (Civo) USD/GPU-h"
            " (modal.com/blog/nvidia-l40s-price-article)",
            "2025-08", fp8_tflops=733,
        ),
        # Rows below: specifications from the vendors' data sheets (dense, no sparsity); prices are list prices
        # as recalled from the named public pages for the stated date, not re-checked when written (no network).
        Gpu(
            "h100-pcie", "hopper", 80, 2.0, 756, 0, 2.49,
            "Lambda on-demand list price for 1x H100 PCIe (lambda.ai/service/gpu-cloud pricing page)",
            "2025-06", pcie_gb_s=64.0, fp8_tflops=1513,
        ),
        Gpu(
            "b200", "blackwell", 180, 8.0, 2250, 1800, 4.99,
            "Lambda on-demand list price per GPU-hour for 8x B200 SXM6 (lambda.ai/service/gpu-cloud pricing page)",
            "2025-09", pcie_gb_s=64.0, fp8_tflops=4500,
        ),
        Gpu(
            "a100-40gb", "ampere", 40, 1.555, 312, 600, 1.29,
            "Lambda on-demand list price for 1x A100 40 GB SXM4 (lambda.ai/service/gpu-cloud pricing page)",
            "2025-06",
        ),
        Gpu(
            "l4", "ada", 24, 0.3, 121, 0, 0.80,
            "AWS EC2 g6.xlarge (1x L4) on-demand, us-east-1, 0.8048 USD/h (aws.amazon.com/ec2/pricing/on-demand)",
            "2025-06", fp8_tflops=242,
        ),
        Gpu(
            "a10g", "ampere", 24, 0.6, 70, 0, 1.01,
            "AWS EC2 g5.xlarge (1x A10G) on-demand, us-east-1, 1.006 USD/h (aws.amazon.com/ec2/pricing/on-demand)",
            "2025-06",
        ),
        Gpu(
            "mi300x", "cdna3", 192, 5.3, 1307, 896, 2.49,
            "RunPod on-demand list price for 1x MI300X (runpod.io/pricing); Infinity Fabric 7 x 128 GB/s",
            "2025-06", pcie_gb_s=64.0, fp8_tflops=2615,
        ),
    ]
}  # fmt: skip
GPU_ALIASES = {
    "a100": "a100-80gb",
    "a100_80gb": "a100-80gb",
    "a100_40gb": "a100-40gb",
    "h100-sxm": "h100",
    "h100_pcie": "h100-pcie",
}

# The built-in rows (the calibration's models): published parameter counts (weight bytes) and shapes. The
# shipped Hugging Face configs (backends/models/hf, Llama-3.1, Qwen2.5/3, Mixtral, gpt-oss, Gemma) extend them.
MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in [
        ModelSpec("llama-3-8b", "llama", 32, 4096, 32, 8, 128, 14336, 128256, False, params_b=8.03),
        ModelSpec("llama-3-70b", "llama", 80, 8192, 64, 8, 128, 28672, 128256, False, params_b=70.6),
        ModelSpec("mistral-7b", "mistral", 32, 4096, 32, 8, 128, 14336, 32000, False, params_b=7.24),
        ModelSpec("qwen2.5-32b", "qwen2", 64, 5120, 40, 8, 128, 27648, 152064, False, params_b=32.8),
        ModelSpec("llama-2-7b", "llama", 32, 4096, 32, 32, 128, 11008, 32000, False, params_b=6.74),
    ]
}
MODEL_NAMES = tuple(sorted({*MODELS, *SHIPPED}))


ACTIVATION_RESERVE_GB = 2.0  # per GPU, for activations and CUDA graphs

# vLLM's default max_num_batched_tokens for its OpenAI server (EngineArgs.get_batch_defaults, V1 engine): 8192
# on GPUs with at least 70 GiB of memory other than A100 (a large budget lowers A100 throughput, vLLM PR
# #17885), 2048 on the others. Its max_num_seqs is 256 on every GPU in V0 and the earlier V1 releases; recent
# releases raise it to 1024 on the large GPUs (capsim's `max_batch` keeps 256).
LARGE_GPU_BYTES = 70 * 2**30
PREFILL_BUDGET_LARGE_GPU = 8192
PREFILL_BUDGET_OTHER_GPU = 2048

# Cold start of a fresh vLLM server = engine start + weight load, from the cold-start rows of
# calibration_facts.csv (vLLM 0.11.0 fresh starts on A100, TP1): Qwen3-0.6B (1.2 GB) 37.9 s and
# Qwen3-Coder-30B-A3B (61 GB) 47.4 s give 37.7 s + 0.159 s per GB of weights (~6.3 GB/s).
COLD_START_ENGINE_S = 37.7
COLD_START_S_PER_GB = 0.159


def pool_efficiency(spec: GpuPoolSpec) -> Efficiency:
    """The pool's efficiency factors: its `profile`'s (capsim calibrate) when it names one, else its GPU family's."""
    if spec.profile is not None:
        return Efficiency(**read_profile(spec.profile).efficiency.model_dump())
    return efficiency(gpu_of(spec).family)


def profile_problems(spec: GpuPoolSpec) -> list[tuple[str, str]]:
    """What makes `backends.gpu_pool.profile` unusable with this pool."""
    if spec.profile is None:
        return []
    if spec.iteration_s is not None:
        return [("backends.gpu_pool.profile", "profile and iteration_s both set: give one (iteration_s is explicit)")]
    try:
        prof = read_profile(spec.profile)
    except ProfileError as e:
        hint = " (a relative path is read beside the config)" if not Path(spec.profile).is_file() else ""
        return [("backends.gpu_pool.profile", f"{e}{hint}")]
    family = gpu_of(spec).family
    if prof.family != family:
        return [
            (
                "backends.gpu_pool.profile",
                f"profile {spec.profile} was fitted on {prof.gpu} ({prof.family} family); this pool's GPU is"
                f" {gpu_of(spec).name} ({family}): efficiency factors are per GPU family",
            )
        ]
    return []


def gpu(name: str) -> Gpu:
    return GPUS[GPU_ALIASES.get(name, name)]


def gpu_of(spec: GpuPoolSpec) -> Gpu:
    """The pool's GPU: a catalog row, or the one `backends.gpu_pool.gpu` specifies."""
    g = spec.gpu
    if isinstance(g, str):
        return gpu(g)
    return Gpu(
        g.name, g.family, g.memory_gb, g.hbm_tb_s, g.bf16_tflops, 0.0, g.price_per_gpu_hour_usd,
        "backends.gpu_pool.gpu.price_per_gpu_hour_usd", "the config", pcie_gb_s=g.interconnect_gb_s,
        fp8_tflops=g.fp8_tflops,
    )  # fmt: skip


def model_of(spec: GpuPoolSpec) -> ModelSpec:
    """The pool's model: a built-in row, a shipped config, or `{hf_config: PATH}` (ModelConfigError, KeyError)."""
    m = spec.model
    if not isinstance(m, str):
        return load_hf_config(m.hf_config, m.name)
    return MODELS[m] if m in MODELS else shipped_model(m)


@dataclass(frozen=True)
class ServerPrice:
    usd_per_hour: float  # one server (all its GPUs)
    source: str


def server_price(spec: GpuPoolSpec) -> ServerPrice:
    """The price of one server-hour: `price_per_server_hour_usd` when given, else the GPU's catalog price per
    GPU-hour x `tensor_parallel` (the one place a default GPU price is read)."""
    if spec.price_per_server_hour_usd is not None:
        return ServerPrice(float(spec.price_per_server_hour_usd), "backends.gpu_pool.price_per_server_hour_usd")
    g = gpu_of(spec)
    tp = spec.tensor_parallel
    return ServerPrice(
        g.price_per_gpu_hour_usd * tp,
        f"{'catalog' if isinstance(spec.gpu, str) else 'user GPU'}: {g.name} ${g.price_per_gpu_hour_usd:.2f}/GPU-h"
        f" x {tp} GPU{'s' if tp > 1 else ''}"
        f" ({g.price_source}, as of {g.price_as_of})",
    )


def catalog_problems(spec: GpuPoolSpec) -> list[tuple[str, str]]:
    problems = []
    if isinstance(spec.gpu, str) and GPU_ALIASES.get(spec.gpu, spec.gpu) not in GPUS:
        problems.append(("backends.gpu_pool.gpu", f"unknown GPU {spec.gpu!r}; known: {', '.join(sorted(GPUS))}"))
    if isinstance(spec.model, str) and spec.model not in MODELS and spec.model not in SHIPPED:
        problems.append(("backends.gpu_pool.model", f"unknown model {spec.model!r}; known: {', '.join(MODEL_NAMES)}"))
    elif not isinstance(spec.model, str):
        try:
            model_of(spec)
        except ModelConfigError as e:
            problems.append(("backends.gpu_pool.model.hf_config", str(e)))
    if problems:
        return problems
    problems.extend(draft_problems(spec))
    problems.extend(profile_problems(spec))
    if problems:
        return problems
    if spec.iteration_s is not None and spec.iteration_s.base + spec.iteration_s.per_seq <= 0:
        problems.append(("backends.gpu_pool.iteration_s", "base + per_seq must be > 0 (iterations take time)"))
    if spec.kv_cache_tokens is None and derived_kv_tokens(spec) < 1:
        m, g, d = model_of(spec), gpu_of(spec), draft_spec(spec)
        need = (m.weight_bytes(spec.quantization) + (model_of(d).weight_bytes(d.quantization) if d else 0.0)) / 1e9
        problems.append(
            (
                "backends.gpu_pool.tensor_parallel",
                f"model {m.name}{f' with its draft {d.model}' if d else ''} does not fit on {spec.tensor_parallel} x"
                f" {g.name}: its {spec.quantization} weights take {need:.1f} GB of"
                f" {usable_gb(spec) * spec.tensor_parallel:.1f} GB usable; raise"
                " tensor_parallel or quantize (quantization: fp8 | int8 | int4)",
            )
        )
    a = spec.autoscaler
    if a.enabled and spec.servers > a.max_servers:
        problems.append(
            (
                "backends.gpu_pool.servers",
                f"initial servers ({spec.servers}) exceed autoscaler.max_servers ({a.max_servers})",
            )
        )
    if a.enabled and spec.schedule is not None and max(spec.schedule) > a.max_servers:
        problems.append(
            ("backends.gpu_pool.schedule", f"a scheduled count ({max(spec.schedule)}) exceeds autoscaler.max_servers")
        )
    return problems


def draft_problems(spec: GpuPoolSpec) -> list[tuple[str, str]]:
    """A draft model of `speculative` must be a dense model of the catalog (its cost is derived like the target's)."""
    sp = spec.speculative
    if sp is None or sp.draft == NGRAM:
        return []
    path = "backends.gpu_pool.speculative.draft"
    if sp.draft not in MODELS and sp.draft not in SHIPPED:
        return [(path, f"unknown draft model {sp.draft!r}; known: {NGRAM}, {', '.join(MODEL_NAMES)}")]
    if model_of(spec.model_copy(update={"model": sp.draft})).is_moe:
        return [(path, f"draft model {sp.draft!r} is a mixture of experts: a draft is a small dense model")]
    return []


def draft_spec(spec: GpuPoolSpec) -> GpuPoolSpec | None:
    """The pool's speculative draft model, run on the pool's GPUs with the same tensor parallelism and precision
    (its catalog efficiency, no profile); None without one (no speculative decoding, or n-gram drafting)."""
    sp = spec.speculative
    if sp is None or sp.draft == NGRAM:
        return None
    return spec.model_copy(update={"model": sp.draft, "iteration_s": None, "profile": None, "speculative": None})


def layer_seconds(m: ModelSpec, g: Gpu, eff: Efficiency, tp: int, tokens: float, compute: float) -> float:
    """GPU time of the layers' non-attention work for `tokens` batched tokens (the quantity Vidur profiles)."""
    bw = g.hbm_tb_s * 1e12 * eff.memory
    flops = g.bf16_tflops * 1e12 * compute
    weights = m.dense_params * 2.0 / (tp * bw)
    per_token = 2.0 * m.dense_params / (tp * flops) + m.layers * eff.act_bytes_per_hidden * m.hidden / bw
    return weights + m.layers * eff.kernel_s + tokens * per_token


def derived_iteration(spec: GpuPoolSpec, eff: Efficiency | None = None) -> IterationSpec:
    """The linear iteration model from the GPU, the model, `tensor_parallel` and the precision. A MoE model's
    routed experts are left out of `base` (derived_moe adds the experts a batch touches)."""
    g, m, tp = gpu_of(spec), model_of(spec), spec.tensor_parallel
    if eff is None:
        eff = pool_efficiency(spec)
    bw = g.hbm_tb_s * 1e12 * eff.memory
    rate = compute_rate(spec.quantization, g.bf16_tflops, g.fp8_tflops)
    flops = rate.tflops * 1e12
    flop_params = m.flop_params * rate.time_factor  # per token: active layers + LM head (2 FLOPs each)
    # streamed every iteration: the layers' dense part at the weights' width, the LM head in bf16
    streamed_bytes = m.dense_params * weight_bytes_per_param(spec.quantization) + m.lm_head_params * 2.0
    act = m.layers * eff.act_bytes_per_hidden * m.hidden / bw  # replicated on every GPU
    comm_latency = comm_per_token = 0.0
    if tp > 1:
        comm_latency = 2 * m.layers * allreduce_latency_s(eff, tp)
        link = g.interconnect_gb_s * 1e9 * eff.interconnect  # the all-reduce's achieved bus bandwidth
        comm_per_token = 2 * m.layers * 2.0 * (tp - 1) / tp * m.hidden * 2.0 / link
    host = ENGINE_HOST_COST[spec.engine_version]  # vllm-0.6: zeros (the family's CPU costs are that engine's)
    overhead_s = eff.overhead_s + host.overhead_s
    base = streamed_bytes / (tp * bw) + m.layers * eff.kernel_s + overhead_s + comm_latency
    attn_bw = g.hbm_tb_s * 1e12 * eff.attention_share  # decode attention reading the KV cache
    per_seq = 2.0 * flop_params / (tp * flops * eff.decode_compute) + act + eff.per_seq_s + comm_per_token
    per_prefill_token = 2.0 * flop_params / (tp * flops * eff.prefill_compute) + act + comm_per_token
    if eff.moe_compute is not None and m.is_moe:  # the routed experts' GEMMs at the fused-MoE kernel's rate instead
        routed = 2.0 * m.moe_layers * m.experts_per_token * m.expert_params * rate.time_factor / (tp * flops)
        per_seq += routed * (1.0 / eff.moe_compute - 1.0 / eff.decode_compute)
        per_prefill_token += routed * (1.0 / eff.moe_compute - 1.0 / eff.prefill_compute)
    return IterationSpec(
        base=base,
        per_seq=per_seq + host.per_seq_s,
        per_prefill_token=per_prefill_token,
        per_kv_token=m.kv_bytes_per_token(spec.kv_cache_dtype) * kv_share(m, tp) / attn_bw,
        per_schedule=overhead_s,
    )


def kv_share(m: ModelSpec, tp: int) -> float:
    """The share of a token's KV cache one GPU holds and reads: 1/tp, but a KV head is never split, so with more
    GPUs than KV heads each GPU holds one whole head (vLLM replicates them): 1/kv_heads."""
    return max(1.0 / tp, 1.0 / m.kv_heads)


@dataclass(frozen=True)
class MoeStreaming:
    """The routed experts' share of an iteration: each distinct expert the batch touches is streamed once."""

    expert_s: float  # seconds to stream one routed expert of every MoE layer (split over tensor_parallel)
    top_k: int
    num_experts: int

    def seconds(self, tokens: float) -> float:
        return self.expert_s * expected_experts(tokens, self.top_k, self.num_experts)


def derived_moe(spec: GpuPoolSpec) -> MoeStreaming | None:
    """None for a dense model or an explicit `iteration_s` (the user's linear model is taken as it is)."""
    if spec.iteration_s is not None:
        return None
    m = model_of(spec)
    if not m.is_moe:
        return None
    g = gpu_of(spec)
    bw = g.hbm_tb_s * 1e12 * pool_efficiency(spec).memory
    expert_bytes = m.moe_layers * m.expert_params * weight_bytes_per_param(spec.quantization)
    return MoeStreaming(expert_bytes / (spec.tensor_parallel * bw), m.experts_per_token, m.num_experts)


def usable_gb(spec: GpuPoolSpec) -> float:
    """HBM one GPU of the pool gives to weights and KV (`gpu_memory_utilization` less the activation reserve)."""
    return gpu_of(spec).memory_gb * spec.gpu_memory_utilization - ACTIVATION_RESERVE_GB


def derived_kv_tokens(spec: GpuPoolSpec) -> int:
    m, tp = model_of(spec), spec.tensor_parallel
    free = usable_gb(spec) * 1e9 * tp - m.weight_bytes(spec.quantization)
    per_token = m.kv_bytes_per_token(spec.kv_cache_dtype) * max(1.0, tp / m.kv_heads)  # replicated KV heads
    d = draft_spec(spec)
    if d is not None:  # the draft model's weights, and its KV of the same tokens, share the GPUs' memory
        dm = model_of(d)
        free -= dm.weight_bytes(d.quantization)
        per_token += dm.kv_bytes_per_token(d.kv_cache_dtype) * max(1.0, tp / dm.kv_heads)
    return int(max(free, 0.0) // per_token)


def prefill_token_budget(spec: GpuPoolSpec) -> int | None:
    """Prompt tokens per iteration (chunked prefill; None: none): `max_prefill_tokens`, its `auto` resolved as
    vLLM resolves max_num_batched_tokens for the pool's GPU."""
    if spec.max_prefill_tokens != "auto":
        return spec.max_prefill_tokens
    g = gpu_of(spec)
    large = g.memory_gb * 1e9 >= LARGE_GPU_BYTES and "a100" not in g.name.lower()
    return PREFILL_BUDGET_LARGE_GPU if large else PREFILL_BUDGET_OTHER_GPU


def derived_cold_start_s(spec: GpuPoolSpec) -> float:
    return COLD_START_ENGINE_S + COLD_START_S_PER_GB * model_of(spec).weight_bytes(spec.quantization) / 1e9


def iteration_model(spec: GpuPoolSpec) -> IterationSpec:
    return spec.iteration_s if spec.iteration_s is not None else derived_iteration(spec)


def prefill_prompt_s(spec: GpuPoolSpec) -> float:
    """Multi-step scheduling's extra cost of each prompt in a prefill-only step (0 with one step, an explicit
    iteration_s or a profile: their costs are their own, and `capsim calibrate` fits with an explicit iteration_s)."""
    if spec.num_scheduler_steps > 1 and spec.iteration_s is None and spec.profile is None:
        return MULTISTEP_PREFILL_PROMPT_S
    return 0.0


def kv_capacity(spec: GpuPoolSpec) -> int:
    return spec.kv_cache_tokens if spec.kv_cache_tokens is not None else derived_kv_tokens(spec)


def kv_blocks(spec: GpuPoolSpec) -> int:
    """KV capacity in blocks of `kv_block_tokens` (paged policy)."""
    return kv_capacity(spec) // spec.kv_block_tokens


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)
