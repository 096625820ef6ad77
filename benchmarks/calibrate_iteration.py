"""Fit the GPU iteration model's efficiency factors (one set per GPU family) and report the residuals.

Stage 1, GPU kernels (Vidur's H100 profile of Llama-2-7B, non-attention operators, TP 1/2/4/8, 1-4096
batched tokens): the time of one iteration's layers is

    t(n, tp) = L*layer_bytes/(tp*BW*memory) + L*kernel_s + n*(2*L*layer_params/(tp*FLOPS*compute)
               + L*act_bytes_per_hidden*hidden/(BW*memory)),

with compute = decode_compute for n <= 256 (decode batches: small GEMMs, partly hidden under the weight
stream) and prefill_compute for n > 256. Five factors, fitted by least squares on relative errors.

Stage 2, the serving engine (vLLM v0.6.0, 1xH100, Llama-3-8B, ShareGPT; calibration_facts.csv): with the
stage-1 factors fixed, the two CPU-side factors overhead_s (per iteration) and per_seq_s (per sequence
and iteration) are chosen on a grid, then refined, to minimise the squared log errors of mean TPOT at 2, 8
and 32 req/s and of the request throughput with all 500 prompts sent at once (37 req/s), each simulated
with backends.engine_bench (vLLM's benchmark replayed on one simulated server, max_batch 256 = vLLM's
max_num_seqs, paged KV in blocks of 16).

Run:  PYTHONPATH=. python benchmarks/calibrate_iteration.py [--quick]
It prints the fitted factors (paste them into backends/gpu/catalog.py: _HOPPER) and the residual tables that
docs/calibration.md quotes.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, minimize

from backends.gpu.catalog import EFFICIENCY, GPUS, MODELS, Efficiency, derived_iteration, layer_seconds
from backends.gpu.engine_bench import serve_benchmark
from sim.config.backends import GpuPoolSpec
from workloads.sharegpt import sample_sharegpt

DATA = Path(__file__).resolve().parent / "data"
DECODE_MAX_TOKENS = 256
LAYER_OPS = [
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "post_attention_layernorm",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
]  # per layer; `emb` (the embedding gather) runs once per model and is left out


def load_vidur() -> pd.DataFrame:
    d = pd.read_csv(DATA / "vidur_h100_llama2_7b_mlp_medians.csv")
    layers = MODELS["llama-2-7b"].layers
    d["t_s"] = sum(d[f"{op}_median_ms"] for op in LAYER_OPS) * layers * 1e-3
    return d


def vidur_predict(eff: Efficiency, n: np.ndarray, tp: np.ndarray) -> np.ndarray:
    m, g = MODELS["llama-2-7b"], GPUS["h100"]
    out = np.empty(len(n))
    for k, (tokens, t) in enumerate(zip(n.tolist(), tp.tolist(), strict=True)):
        compute = eff.decode_compute if tokens <= DECODE_MAX_TOKENS else eff.prefill_compute
        out[k] = layer_seconds(m, g, eff, int(t), tokens, compute)
    return out


def fit_stage1(d: pd.DataFrame, start: Efficiency) -> tuple[Efficiency, np.ndarray]:
    n = d["num_tokens"].to_numpy(float)
    tp = d["num_tensor_parallel_workers"].to_numpy(int)
    t = d["t_s"].to_numpy()

    def with_params(p: np.ndarray) -> Efficiency:
        return replace(
            start,
            memory=float(p[0]),
            kernel_s=float(p[1]) * 1e-6,
            decode_compute=float(p[2]),
            prefill_compute=float(p[3]),
            act_bytes_per_hidden=float(p[4]),
        )

    def resid(p: np.ndarray) -> np.ndarray:
        return (vidur_predict(with_params(p), n, tp) - t) / t

    r = least_squares(resid, [0.8, 20.0, 0.5, 0.6, 10.0], bounds=([0.05, 0, 0.01, 0.01, 0], [1, 1000, 1, 1, 1000]))
    eff = with_params(r.x)
    return eff, resid(r.x)


def stage1_table(d: pd.DataFrame, res: np.ndarray) -> list[str]:
    rows = ["| TP | regime | rows | rms error | mean error | max abs error |", "|---|---|---|---|---|---|"]
    dec = d["num_tokens"].to_numpy() <= DECODE_MAX_TOKENS
    tp = d["num_tensor_parallel_workers"].to_numpy()
    for k in (1, 2, 4, 8):
        for name, mask in (("decode (n <= 256)", dec), ("prefill (n > 256)", ~dec)):
            sel = (tp == k) & mask
            e = res[sel]
            rms, worst = np.sqrt(np.mean(e**2)), np.abs(e).max()
            rows.append(f"| {k} | {name} | {sel.sum()} | {rms:.1%} | {e.mean():+.1%} | {worst:.1%} |")
    rows.append(
        f"| all | all | {len(res)} | {np.sqrt(np.mean(res**2)):.1%} | {res.mean():+.1%} | {np.abs(res).max():.1%} |"
    )
    return rows


def vllm_targets() -> dict[str, float]:
    f = pd.read_csv(DATA / "calibration_facts_gpu.csv")
    f = f[(f.hardware == "1xH100") & (f.model == "Llama-3-8B")]
    get = {r.metric: r.value for r in f.itertuples() if "ShareGPT" in r.workload_or_setting}
    return {
        "tpot_2": float(get["TPOT_mean_at_2qps"]) * 1e-3,
        "tpot_8": float(get["TPOT_mean_at_8qps"]) * 1e-3,
        "tpot_32": float(get["TPOT_mean_at_32qps"]) * 1e-3,
        "throughput_inf": float(get["max_throughput_qps_inf"]),
    }


def preset_spec(eff: Efficiency | None = None) -> GpuPoolSpec:
    """The calibrated H100 + Llama-3-8B preset: vLLM defaults (max_num_seqs 256, blocks of 16)."""
    spec = GpuPoolSpec(gpu="h100", model="llama-3-8b", max_batch=256, kv_policy="paged", kv_block_tokens=16)
    if eff is None:
        return spec
    return spec.model_copy(update={"iteration_s": derived_iteration(spec, eff)})


def vllm_benchmark(spec: GpuPoolSpec, quick: bool = False) -> dict[str, float]:
    """Mean TPOT at 2, 8 and 32 req/s and the all-at-once throughput of 500 prompts (vLLM's protocol),
    averaged over a few fixed ShareGPT-like samples (common random numbers across parameter values)."""
    out: dict[str, float] = {}
    plan = [(2.0, 1000, 2), (8.0, 2000, 2), (32.0, 4000, 2), (math.inf, 500, 10)]
    if quick:
        plan = [(2.0, 400, 1), (8.0, 800, 1), (32.0, 2000, 1), (math.inf, 500, 4)]
    for rate, n, reps in plan:
        tpot, thr = [], []
        for seed in range(reps):
            rng = np.random.default_rng(1000 + seed)
            inp, outp = sample_sharegpt(rng, n)
            r = serve_benchmark(spec, inp, outp, rate, rng)
            tpot.append(r.tpot_mean_s)
            thr.append(r.throughput_rps)
        key = "inf" if math.isinf(rate) else str(int(rate))
        out[f"tpot_{key}"] = float(np.mean(tpot))
        out[f"throughput_{key}"] = float(np.mean(thr))
    return out


def stage2_loss(sim: dict[str, float], targets: dict[str, float]) -> float:
    return float(sum(math.log(sim[k] / v) ** 2 for k, v in targets.items()))


def fit_stage2(eff1: Efficiency, targets: dict[str, float], quick: bool) -> tuple[Efficiency, dict[str, float]]:
    def at(overhead_s: float, per_seq_s: float) -> tuple[Efficiency, dict[str, float]]:
        eff = replace(eff1, overhead_s=max(overhead_s, 0.0), per_seq_s=max(per_seq_s, 0.0))
        return eff, vllm_benchmark(preset_spec(eff), quick=True)

    grid_o = np.linspace(0.0, 3e-3, 7 if quick else 13)
    grid_s = np.linspace(0.0, 60e-6, 7 if quick else 13)
    best = (math.inf, 0.0, 0.0)
    for o in grid_o:
        for s in grid_s:
            loss = stage2_loss(at(o, s)[1], targets)
            if loss < best[0]:
                best = (loss, float(o), float(s))
    res = minimize(
        lambda p: stage2_loss(at(p[0] * 1e-3, p[1] * 1e-6)[1], targets),
        [best[1] * 1e3, best[2] * 1e6],
        method="Nelder-Mead",
        options={"xatol": 0.01, "fatol": 1e-5, "maxiter": 30 if quick else 80},
    )
    o, s = float(res.x[0]) * 1e-3, float(res.x[1]) * 1e-6
    eff = replace(eff1, overhead_s=max(o, 0.0), per_seq_s=max(s, 0.0))
    return eff, vllm_benchmark(preset_spec(eff), quick=quick)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="coarser grid and smaller samples")
    args = ap.parse_args()
    d = load_vidur()
    eff1, res = fit_stage1(d, EFFICIENCY["hopper"])
    print("## Stage 1: Vidur H100 profile (Llama-2-7B, non-attention operators)")
    print(
        f"memory={eff1.memory:.4f} kernel_s={eff1.kernel_s:.3g} decode_compute={eff1.decode_compute:.4f} "
        f"prefill_compute={eff1.prefill_compute:.4f} act_bytes_per_hidden={eff1.act_bytes_per_hidden:.2f}"
    )
    print("\n".join(stage1_table(d, res)))
    targets = vllm_targets()
    eff2, sim = fit_stage2(eff1, targets, args.quick)
    print("\n## Stage 2: vLLM v0.6.0 on 1xH100, Llama-3-8B, ShareGPT")
    print(f"overhead_s={eff2.overhead_s:.4g} per_seq_s={eff2.per_seq_s:.4g}")
    print("| quantity | vLLM | simulated | error |\n|---|---|---|---|")
    for k, v in targets.items():
        unit, scale = ("ms", 1e3) if k.startswith("tpot") else ("req/s", 1.0)
        print(f"| {k} | {v * scale:.1f} {unit} | {sim[k] * scale:.2f} {unit} | {sim[k] / v - 1:+.1%} |")
    it = derived_iteration(preset_spec(), eff2)
    print(f"\nderived H100 + Llama-3-8B iteration model: {it}")
    print("\nEfficiency for backends/gpu/catalog.py (_HOPPER):")
    print(
        f"Efficiency(memory={eff2.memory:.4f}, kernel_s={eff2.kernel_s:.3g}, decode_compute={eff2.decode_compute:.4f}, "
        f"prefill_compute={eff2.prefill_compute:.4f}, act_bytes_per_hidden={eff2.act_bytes_per_hidden:.2f}, "
        f"overhead_s={eff2.overhead_s:.4g}, per_seq_s={eff2.per_seq_s:.4g}, allreduce_s={eff2.allreduce_s:.3g})"
    )


if __name__ == "__main__":
    main()
