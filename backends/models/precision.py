"""Precision of weights (`quantization`) and of the KV cache (`kv_cache_dtype`): bytes and compute rate.

* `bf16`: 2 bytes per weight, bf16 tensor cores.
* `fp8` (W8A8, e4m3, per-channel or per-tensor scales): 1 byte per weight; on GPUs with FP8 tensor cores
  (Ada, Hopper, Blackwell, CDNA3) the GEMMs run at the FP8 rate; elsewhere (Ampere) vLLM runs it weight-only
  (weights dequantised to bf16 inside the GEMM, the Marlin kernel) at the bf16 rate plus a dequantisation cost.
* `int8` / `int4` (weight-only W8A16 / W4A16, GPTQ/AWQ style): 1 byte, or half a byte plus one 16-bit scale
  per group of 128 weights; activations stay bf16, so the GEMMs run at the bf16 rate plus the dequantisation
  cost on every GPU.
* `kv_cache_dtype`: `auto` keeps K and V in the model's activation dtype (bf16, 2 bytes), `fp8` stores 1 byte.

The dequantisation cost (`DEQUANT_COMPUTE_FACTOR`) is an assumption, not a fit: Marlin-class kernels hide it
under the weight stream at decode batch sizes and lose roughly a tenth to a fifth of the bf16 GEMM rate when
compute-bound; capsim applies 1.15 to the compute-bound terms (per-token FLOPs) only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Quantization = Literal["bf16", "fp8", "int8", "int4"]
KvCacheDtype = Literal["auto", "fp8"]

INT4_GROUP = 128  # weights per 16-bit scale (GPTQ/AWQ default group size)
_WEIGHT_BYTES: dict[str, float] = {"bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5 + 2.0 / INT4_GROUP}
_KV_BYTES: dict[str, float] = {"auto": 2.0, "fp8": 1.0}
DEQUANT_COMPUTE_FACTOR = 1.15


def weight_bytes_per_param(quantization: str) -> float:
    try:
        return _WEIGHT_BYTES[quantization]
    except KeyError:
        raise ValueError(f"unknown quantization {quantization!r}; known: {', '.join(_WEIGHT_BYTES)}") from None


def kv_bytes_per_value(kv_cache_dtype: str) -> float:
    try:
        return _KV_BYTES[kv_cache_dtype]
    except KeyError:
        raise ValueError(f"unknown kv_cache_dtype {kv_cache_dtype!r}; known: {', '.join(_KV_BYTES)}") from None


@dataclass(frozen=True)
class ComputeRate:
    tflops: float  # dense tensor TFLOP/s the GEMMs run at
    time_factor: float  # multiplier on compute time (dequantisation inside the GEMM; 1: none)
    note: str


def compute_rate(quantization: str, bf16_tflops: float, fp8_tflops: float) -> ComputeRate:
    """The tensor rate a quantization's GEMMs run at on a GPU with these dense bf16 / fp8 rates (0: no FP8)."""
    weight_bytes_per_param(quantization)  # refuses unknown names
    if quantization == "bf16":
        return ComputeRate(bf16_tflops, 1.0, "bf16 tensor cores")
    if quantization == "fp8" and fp8_tflops > 0:
        return ComputeRate(fp8_tflops, 1.0, "FP8 tensor cores (W8A8)")
    kind = "weight-only FP8 (no FP8 tensor cores)" if quantization == "fp8" else f"weight-only {quantization}"
    return ComputeRate(bf16_tflops, DEQUANT_COMPUTE_FACTOR, f"{kind}: bf16 GEMMs + dequantisation")
