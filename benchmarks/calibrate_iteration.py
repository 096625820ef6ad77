"""Fit the GPU iteration model's efficiency factors (one set per GPU family) and report the residuals.

Stage 1, GPU kernels: backends/models/kernel_fit.py on Vidur's H100 profile of Llama-2-7B (five factors).
Stage 2, the serving engine: backends/models/serving_fit.py (what `capsim calibrate` runs) on vLLM v0.6.0's
published 1xH100 + Llama-3-8B ShareGPT figures (backends/models/published/): the CPU-side factors
overhead_s and per_seq_s, with the stage-1 factors fixed.

Run:  PYTHONPATH=. python benchmarks/calibrate_iteration.py [--samples N]
It prints the fitted factors (paste them into backends/gpu/catalog.py: _HOPPER) and the residual tables that
docs/calibration.md quotes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backends.gpu.catalog import EFFICIENCY, derived_iteration
from backends.models.bench_results import read_bench_file
from backends.models.kernel_fit import fit_stage1, load_vidur, stage1_table
from backends.models.serving_fit import fit_efficiency
from sim.app.calibrate_command import markdown_table, pool_spec

ROOT = Path(__file__).resolve().parents[1]
VIDUR = ROOT / "benchmarks" / "data" / "vidur_h100_llama2_7b_mlp_medians.csv"
PUBLISHED = ROOT / "backends" / "models" / "published" / "vllm-v0.6.0_h100_llama-3-8b_sharegpt.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2, help="replays per benchmark run in stage 2")
    args = ap.parse_args()
    d = load_vidur(VIDUR)
    eff1, res = fit_stage1(d, EFFICIENCY["hopper"])
    print("## Stage 1: Vidur H100 profile (Llama-2-7B, non-attention operators)")
    print(
        f"memory={eff1.memory:.4f} kernel_s={eff1.kernel_s:.3g} decode_compute={eff1.decode_compute:.4f} "
        f"prefill_compute={eff1.prefill_compute:.4f} act_bytes_per_hidden={eff1.act_bytes_per_hidden:.2f}"
    )
    print("\n".join(stage1_table(d, res)))
    spec = pool_spec("h100", "llama-3-8b", 1, 256, "bf16")  # vLLM defaults: max_num_seqs 256, 8192 tokens a step
    fit = fit_efficiency(spec, eff1, read_bench_file(PUBLISHED).points, shape="sharegpt", samples=args.samples)
    eff2 = fit.efficiency
    print("\n## Stage 2: vLLM v0.6.0 on 1xH100, Llama-3-8B, ShareGPT")
    print(f"overhead_s={eff2.overhead_s:.4g} per_seq_s={eff2.per_seq_s:.4g} (loss {fit.loss:.3g})")
    print("\n".join(markdown_table(fit.residuals)))
    print(f"\nderived H100 + Llama-3-8B iteration model: {derived_iteration(spec, eff2)}")
    print("\nEfficiency for backends/gpu/catalog.py (_HOPPER):")
    print(
        f"Efficiency(memory={eff2.memory:.4f}, kernel_s={eff2.kernel_s:.3g}, decode_compute={eff2.decode_compute:.4f}, "
        f"prefill_compute={eff2.prefill_compute:.4f}, act_bytes_per_hidden={eff2.act_bytes_per_hidden:.2f}, "
        f"overhead_s={eff2.overhead_s:.4g}, per_seq_s={eff2.per_seq_s:.4g}, allreduce_s={eff2.allreduce_s:.3g})"
    )


if __name__ == "__main__":
    main()
