"""A GPU family's efficiency factors: the shares of peak bandwidth and FLOP/s the iteration model's terms reach, the
fixed kernel and CPU costs, and the tensor-parallel all-reduce (docs/calibration.md has the fits and their residuals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALLREDUCE_BUS_SHARE = 0.3  # an all-reduce's achieved share of the NVLink/PCIe bandwidth (the source: above _HOPPER)


@dataclass(frozen=True)
class Efficiency:
    memory: float  # achieved fraction of HBM bandwidth when streaming weights, KV and activations
    kernel_s: float  # fixed GPU time per layer and iteration (kernel launches and tails; not split by TP)
    decode_compute: float  # effective fraction of bf16 FLOP/s of one more decode token (small-batch GEMMs)
    prefill_compute: float  # achieved fraction of bf16 FLOP/s on prompt tokens (large GEMMs)
    act_bytes_per_hidden: float  # activation bytes per token, layer and hidden unit that TP replicates
    overhead_s: float  # per-iteration CPU cost: scheduling, sampling, Python (vLLM-class engine)
    per_seq_s: float  # per-sequence CPU cost per iteration (sampling, detokenisation, bookkeeping)
    allreduce_s: float  # latency of one all-reduce per log2(tensor_parallel) step; two all-reduces per layer
    interconnect: float = ALLREDUCE_BUS_SHARE  # achieved share of the interconnect's bandwidth in an all-reduce
    attention: float | None = None  # achieved share of HBM bandwidth reading the KV cache in decode (None: memory)
    # achieved share of the tensor rate of a MoE layer's routed-expert GEMMs (vLLM's fused-MoE kernel), in decode and
    # prefill alike; None: the dense GEMMs' decode_compute / prefill_compute (the model before this factor)
    moe_compute: float | None = None

    @property
    def attention_share(self) -> float:
        return self.memory if self.attention is None else self.attention


# Stage 1 (kernel factors) by backends/models/kernel_fit.py on each family's Vidur profiles, stage 2 (the engine's
# CPU costs overhead_s, per_seq_s and the decode attention's share of HBM bandwidth) by
# backends/models/serving_fit.py on vLLM v0.6.0's published H100 figures (ShareGPT and decode-heavy runs); both run
# by benchmarks/calibrate_iteration.py (docs/calibration.md). Ampere's kernel factors are its own (A100 profile of
# Llama-3-8B); its CPU costs and attention share are Hopper's (the same engine and kernels: no Ampere serving
# figures here).
# All-reduce (tensor parallelism), both families: Vidur's NCCL profile of 8 x H100 SXM (microsoft/vidur
# data/profiling/network/h100_dgx/all_reduce.csv, commit e26eb8f7, MIT; quoted, not shipped): the fastest of
# the small-message runs take 7 us at TP 2, 12-15 us at TP 4 and 19-20 us at TP 8 (6.6 us x log2(tp), a
# tree's steps), and 64 MB messages reach a bus bandwidth of 274 GB/s (TP 2) to 364 GB/s (TP 8) against
# NVLink's 900 GB/s; 0.5-2.5 MB messages (decode batches) ~250 GB/s: ALLREDUCE_BUS_SHARE 0.3.
_HOPPER = Efficiency(
    memory=0.8924,
    kernel_s=3.168e-05,
    decode_compute=2.027,
    prefill_compute=0.8602,
    act_bytes_per_hidden=45.00,
    overhead_s=0.001775,
    per_seq_s=1.108e-05,
    allreduce_s=6.6e-06,
    attention=0.6363,
    moe_compute=0.1870,
)
_AMPERE = Efficiency(
    memory=0.8420,
    kernel_s=3.479e-05,
    decode_compute=1.066,
    prefill_compute=0.7999,
    act_bytes_per_hidden=38.47,
    overhead_s=_HOPPER.overhead_s,
    per_seq_s=_HOPPER.per_seq_s,
    allreduce_s=_HOPPER.allreduce_s,
    attention=_HOPPER.attention,
    moe_compute=0.3513,
)
EFFICIENCY: dict[str, Efficiency] = {
    "hopper": _HOPPER,
    "ampere": _AMPERE,
    "ada": _HOPPER,
}
MEASURED_FAMILIES = frozenset({"hopper", "ampere"})  # families whose kernel factors were fitted to their own profiles


def efficiency(family: str) -> Efficiency:
    """A family's efficiency factors; a family without any (Ada, Blackwell, CDNA3, a user's) carries Hopper's."""
    return EFFICIENCY.get(family, _HOPPER)


def efficiency_note(family: str) -> str | None:
    """What a run should say when its GPU family's factors were not (all) measured on that family."""
    if family == "hopper":
        return None
    if family in MEASURED_FAMILIES:
        return (
            f"GPU family {family!r}: kernel factors fitted on its own kernel profile; the engine's CPU costs and the"
            " decode attention's bandwidth share are Hopper's (no serving measurements on this family)"
        )
    return (
        f"GPU family {family!r} has no measured efficiency factors: Hopper's are used with its own bandwidth,"
        " FLOP/s, memory and interconnect (a first-principles estimate, not a calibration)"
    )


@dataclass(frozen=True)
class EngineHostCost:
    """An engine release's host (CPU) cost per scheduler step beyond the family's overhead_s and per_seq_s (which
    were fitted on vLLM v0.6.0): the driver's Python work that the GPU waits for."""

    overhead_s: float  # per step (scheduling, input preparation)
    per_seq_s: float  # per sequence and step (input preparation, sampling, output processing, streaming)


# by `engine_version`; vllm-0.5 fitted on vLLM 0.5.4's single-GPU LambdaLabs runs, TP > 1 held out
# (benchmarks/fit_lambda.py, docs/calibration.md)
ENGINE_HOST_COST: dict[str, EngineHostCost] = {
    "vllm-0.6": EngineHostCost(overhead_s=0.0, per_seq_s=0.0),
    "vllm-0.5": EngineHostCost(overhead_s=8.111e-04, per_seq_s=2.093e-04),
}


# vLLM v0.6.0 with multi-step scheduling (num_scheduler_steps > 1): the cost of each prompt in a prefill-only step
# beyond the derived iteration (a new sequence group's input preparation and bookkeeping in Python, serialised with
# the GPU). Fitted on the LambdaLabs H100 dense vLLM 0.6.0 runs at TP 1 and 2 (9 bursts of 80-320 prompts), held
# out on the other 22 dense vLLM 0.6.0 runs, every A100 run among them (benchmarks/multistep_probe.py --fit,
# docs/calibration.md); the same for every family. A fixed cost per step fits the bursts as well (~7 prompts a
# step) but not vLLM's published Poisson runs, where nearly every step holds one prompt (benchmarks/corner_probe.py).
# Not charged with one scheduler step (catalog.prefill_prompt_s): there a prefill runs in the engine's ordinary
# iteration, whose costs stage 2 fitted.
MULTISTEP_PREFILL_PROMPT_S = 0.0018672


def allreduce_latency_s(eff: Efficiency, tp: int) -> float:
    """Latency of one all-reduce over `tp` GPUs: `allreduce_s` per step of a log2(tp)-deep tree (0 at TP 1)."""
    return eff.allreduce_s * math.log2(tp) if tp > 1 else 0.0
