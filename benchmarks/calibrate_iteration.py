"""Fit the GPU iteration model's efficiency factors (one set per GPU family) and report the residuals.

Stage 1, GPU kernels: backends/models/kernel_fit.py on each family's Vidur profiles (five factors per family:
Hopper from Llama-2-7B and Llama-2-70B on H100, Ampere from Llama-3-8B on A100, TP 1-8 each).
Stage 2, the serving engine: backends/models/serving_fit.py (what `capsim calibrate` runs) on vLLM v0.6.0's
published 1xH100 + Llama-3-8B ShareGPT and decode-heavy figures (backends/models/published/; the prefill-heavy
run held out): the CPU-side factors overhead_s and per_seq_s and the decode attention's share of HBM bandwidth,
with the stage-1 factors fixed.

Run:  PYTHONPATH=. python benchmarks/calibrate_iteration.py [--samples N]
It prints the fitted factors (paste them into backends/gpu/catalog.py: _HOPPER, _AMPERE) and the residual
tables that docs/calibration.md quotes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backends.gpu.catalog import EFFICIENCY, derived_iteration
from backends.models.bench_results import read_bench_file
from backends.models.kernel_fit import family_profiles, fit_stage1, stage1_table
from backends.models.serving_fit import fit_efficiency, residuals
from sim.app.calibrate_command import markdown_table, pool_spec

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "backends" / "models" / "published"
FIT = ("vllm-v0.6.0_h100_llama-3-8b_sharegpt.csv", "vllm-v0.6.0_h100_llama-3-8b_decode-heavy.csv")
HOLDOUT = ("vllm-v0.6.0_h100_llama-3-8b_prefill-heavy.csv",)
STAGE2 = ("overhead_s", "per_seq_s", "attention")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2, help="replays per benchmark run in stage 2")
    ap.add_argument(
        "--num-scheduler-steps",
        type=int,
        default=1,
        help="replay the runs with multi-step scheduling (they ran with 10; the catalog's factors: 1)",
    )
    args = ap.parse_args()
    stage1 = {}
    for family in ("hopper", "ampere"):
        eff1, fits = fit_stage1(family_profiles(family), EFFICIENCY[family])
        stage1[family] = eff1
        print(
            f"## Stage 1, {family}: Vidur profiles ({', '.join(p.label for p, _, _ in fits)}; non-attention operators)"
        )
        print(
            f"memory={eff1.memory:.4f} kernel_s={eff1.kernel_s:.4g} decode_compute={eff1.decode_compute:.4g} "
            f"prefill_compute={eff1.prefill_compute:.4f} act_bytes_per_hidden={eff1.act_bytes_per_hidden:.2f}\n"
        )
        print("\n".join(stage1_table(fits)) + "\n")
    eff1 = stage1["hopper"]
    # vLLM defaults: max_num_seqs 256, 8192 tokens a step
    spec = pool_spec("h100", "llama-3-8b", 1, 256, "bf16", 8192, args.num_scheduler_steps)
    points = [p for name in FIT for p in read_bench_file(PUBLISHED / name).points]
    fit = fit_efficiency(spec, eff1, points, fit=STAGE2, shape="sharegpt", samples=args.samples)
    eff2 = fit.efficiency
    held = [p for name in HOLDOUT for p in read_bench_file(PUBLISHED / name).points]
    rows = fit.residuals + residuals(spec, eff2, held, "sharegpt", args.samples, 0, in_fit=False)
    print("\n## Stage 2: vLLM v0.6.0 on 1xH100, Llama-3-8B, ShareGPT and decode-heavy (prefill-heavy held out)")
    print(
        f"overhead_s={eff2.overhead_s:.4g} per_seq_s={eff2.per_seq_s:.4g} attention={eff2.attention_share:.4g}"
        f" (loss {fit.loss:.3g})"
    )
    print("\n".join(markdown_table(rows)))
    print(f"\nderived H100 + Llama-3-8B iteration model: {derived_iteration(spec, eff2)}")
    print("\nEfficiency for backends/gpu/catalog.py (_HOPPER):")
    print(
        f"Efficiency(memory={eff2.memory:.4f}, kernel_s={eff2.kernel_s:.4g}, decode_compute={eff2.decode_compute:.4g}, "
        f"prefill_compute={eff2.prefill_compute:.4f}, act_bytes_per_hidden={eff2.act_bytes_per_hidden:.2f}, "
        f"overhead_s={eff2.overhead_s:.4g}, per_seq_s={eff2.per_seq_s:.4g}, allreduce_s={eff2.allreduce_s:.3g}, "
        f"attention={eff2.attention_share:.4g})"
    )


if __name__ == "__main__":
    main()
