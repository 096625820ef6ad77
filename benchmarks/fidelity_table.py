"""The fidelity study's tables (docs/calibration.md, "Out of the calibrated corner").

Kernel rows: every copied Vidur profile (H100 Llama-2-7B and Llama-2-70B, A100 Llama-3-8B; TP 1, 2, 4, 8)
against the catalog's per-family factors: rms, mean and worst relative error per GPU x model x TP x regime.

Serving predictions (`--serving`): vLLM's benchmark replayed (backends/gpu/engine_bench.py: one server, vLLM
v0.6's defaults without chunked prefill, 500 ShareGPT-like prompts, Poisson arrivals) on deployments out of the
calibrated corner, with the iteration model's terms. No published figure for these deployments is shipped: the
table is a prediction, to be checked against measurements. The serving part uses only interfaces that predate
the study, so the same command run on an older checkout (PYTHONPATH=that checkout) gives the "before" column.

Run:  PYTHONPATH=. python benchmarks/fidelity_table.py [--serving] [--samples N]
"""

from __future__ import annotations

import argparse

import numpy as np

DEPLOYMENTS = [
    ("h100", "llama-3-8b", 1, (2.0, 8.0, 32.0)),
    ("h100", "llama-3-70b", 4, (1.0, 4.0, 16.0)),
    ("h100", "llama-3-70b", 8, (1.0, 4.0, 16.0)),
    ("a100-80gb", "llama-3-8b", 1, (2.0, 8.0, 16.0)),
    ("a100-80gb", "llama-3-70b", 4, (1.0, 4.0, 8.0)),
]


def kernel_rows() -> list[str]:
    from backends.gpu.catalog import EFFICIENCY
    from backends.models.kernel_fit import PROFILES, load_vidur, stage1_table, vidur_predict

    fits = []
    for prof in PROFILES:
        d = load_vidur(prof)
        n, tp = d["num_tokens"].to_numpy(float), d["num_tensor_parallel_workers"].to_numpy(int)
        fits.append((prof, d, vidur_predict(EFFICIENCY[prof.family], prof, n, tp) / d["t_s"].to_numpy() - 1.0))
    return stage1_table(fits)


def serving_rows(samples: int) -> list[str]:
    from backends.gpu.catalog import derived_iteration
    from backends.gpu.engine_bench import serve_benchmark
    from sim.config.backends import GpuPoolSpec
    from workloads.sharegpt import sample_sharegpt

    rows = [
        "| GPU | model | TP | base ms | per_seq µs | per_kv_token ns | rate (req/s) | mean TPOT ms | mean TTFT ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for gpu, model, tp, rates in DEPLOYMENTS:
        spec = GpuPoolSpec.model_validate(  # vLLM v0.6 without chunked prefill: each prompt in one iteration
            {"gpu": gpu, "model": model, "tensor_parallel": tp, "max_batch": 256, "kv_policy": "paged",
             "kv_block_tokens": 16, "max_prefill_tokens": None}
        )  # fmt: skip
        it = derived_iteration(spec)
        for k, rate in enumerate(rates):
            tpot, ttft = [], []
            for j in range(samples):
                rng = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(k, j)))
                ins, outs = sample_sharegpt(rng, 500)
                r = serve_benchmark(spec, ins, outs, rate, rng)
                tpot.append(r.tpot_mean_s * 1e3)
                ttft.append(r.ttft_mean_s * 1e3)
            rows.append(
                f"| {gpu} | {model} | {tp} | {it.base * 1e3:.2f} | {it.per_seq * 1e6:.1f} | {it.per_kv_token * 1e9:.1f}"
                f" | {rate:g} | {np.mean(tpot):.2f} | {np.mean(ttft):.0f} |"
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serving", action="store_true", help="the serving predictions (else the kernel rows)")
    ap.add_argument("--samples", type=int, default=2, help="replays per serving point")
    args = ap.parse_args()
    print("\n".join(serving_rows(args.samples) if args.serving else kernel_rows()))


if __name__ == "__main__":
    main()
