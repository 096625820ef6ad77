"""The calibrated H100 + Llama-3-8B preset against vLLM v0.6.0's published serving numbers.

vLLM's benchmark_serving protocol, replayed on one simulated server (backends.engine_bench): ShareGPT-like
prompts (workloads.sharegpt: 202 in / 179 out on average after vLLM's filter) sent at Poisson 2, 8 and
32 req/s (mean TPOT) and all 500 at once (request throughput = 500 / duration, mean TTFT and TPOT).
Several independent samples per point; the table shows their mean and standard deviation. Also: the
sustained capacity (completions per second under a long overload), which the 500-prompt burst
understates because its last, longest requests run in a nearly empty batch.

Run:  PYTHONPATH=. python benchmarks/vllm_h100.py [--samples 10]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from backends.gpu.catalog import iteration_model
from backends.gpu.engine_bench import serve_benchmark
from sim.config.backends import GpuPoolSpec
from workloads.sharegpt import sample_sharegpt

PRESET = GpuPoolSpec(gpu="h100", model="llama-3-8b", max_batch=256, kv_policy="paged", kv_block_tokens=16)
VLLM = {"tpot_2": 8.0, "tpot_8": 9.0, "tpot_32": 13.0, "throughput_inf": 37.0, "ttft_inf": 2600.0, "tpot_inf": 57.0}
TOLERANCE = 0.25


def measure(spec: GpuPoolSpec, samples: int, n_poisson: int = 2000) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for rate in (2.0, 8.0, 32.0, math.inf):
        vals: dict[str, list[float]] = {"tpot": [], "throughput": [], "ttft": []}
        for seed in range(samples):
            rng = np.random.default_rng(7000 + seed)
            n = 500 if math.isinf(rate) else n_poisson
            inp, outp = sample_sharegpt(rng, n)
            r = serve_benchmark(spec, inp, outp, rate, rng)
            vals["tpot"].append(r.tpot_mean_s * 1e3)
            vals["throughput"].append(r.throughput_rps)
            vals["ttft"].append(r.ttft_mean_s * 1e3)
        key = "inf" if math.isinf(rate) else str(int(rate))
        for name, v in vals.items():
            out[f"{name}_{key}"] = (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
    return out


def sustained_capacity(spec: GpuPoolSpec, rate: float = 120.0, n: int = 20000) -> float:
    rng = np.random.default_rng(99)
    inp, outp = sample_sharegpt(rng, n)
    return serve_benchmark(spec, inp, outp, rate, rng).throughput_rps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10)
    args = ap.parse_args()
    t0 = time.perf_counter()
    it = iteration_model(PRESET)
    print(
        f"preset: h100 + llama-3-8b, max_batch 256, paged KV (blocks of 16); derived iteration: base "
        f"{it.base * 1e3:.3f} ms, per_seq {it.per_seq * 1e6:.2f} us, "
        f"per_prefill_token {it.per_prefill_token * 1e6:.2f} us, per_kv_token {it.per_kv_token * 1e9:.1f} ns"
    )
    m = measure(PRESET, args.samples)
    print(f"\n| quantity | vLLM v0.6.0 | simulated (mean +- sd over {args.samples} samples) | error |")
    print("|---|---|---|---|")
    for key, unit in (
        ("tpot_2", "ms"),
        ("tpot_8", "ms"),
        ("tpot_32", "ms"),
        ("throughput_inf", "req/s"),
        ("ttft_inf", "ms"),
        ("tpot_inf", "ms"),
    ):
        mean, sd = m[key]
        ref = VLLM[key]
        flag = "" if key in ("ttft_inf", "tpot_inf") else (" ok" if abs(mean / ref - 1) <= TOLERANCE else " OUT")
        print(f"| {key} | {ref:g} {unit} | {mean:.2f} +- {sd:.2f} {unit} | {mean / ref - 1:+.1%}{flag} |")
    print(f"\nsustained capacity (Poisson 120 req/s, 20k requests): {sustained_capacity(PRESET):.1f} req/s")
    print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
