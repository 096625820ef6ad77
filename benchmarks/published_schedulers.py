"""Every published vLLM v0.6.0 H100 point replayed under `scheduler: v0` and `scheduler: v1` (docs/calibration.md).

No fitting: the catalog's calibrated factors (backends/gpu/catalog.py, the Hopper family) derive the iteration
model, and each published run (backends/models/published/*.csv) is replayed as `capsim calibrate` replays it
(backends/models/serving_fit.residuals: one server, vLLM's defaults from sim/app/calibrate_command.pool_spec,
the run's own rate, request count and lengths, `--samples` replays per run from SeedSequence(seed, (run,
sample))). The v0 column is that pool as calibrate builds it; the v1 column is the same pool with
`scheduler: v1` and a token budget of `--budget` (vLLM's `max_num_batched_tokens`, 8192 on an H100). Both
columns share the seeds, so their difference is the scheduler's alone.

Run:  PYTHONPATH=. python benchmarks/published_schedulers.py [--samples 4] [--budget 8192]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "backends" / "models" / "published"


def table(samples: int, seed: int, budget: int) -> list[str]:
    from backends.gpu.catalog import efficiency, gpu_of
    from backends.models.bench_results import read_bench_file
    from backends.models.serving_fit import residuals
    from sim.app.calibrate_command import NAMES, UNITS, pool_spec, rate_label

    v0 = pool_spec("h100", "llama-3-8b", 1, 256, "bf16")
    v1 = v0.model_copy(update={"scheduler": "v1", "max_prefill_tokens": budget})
    eff = efficiency(gpu_of(v0).family)
    rows = [
        f"| file | request rate (req/s) | quantity | measured | v0: simulated | v0: error | v1 ({budget}): simulated"
        " | v1: error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(PUBLISHED.glob("*.csv")):
        points = read_bench_file(path).points
        a = residuals(v0, eff, points, "sharegpt", samples, seed, in_fit=False)
        b = residuals(v1, eff, points, "sharegpt", samples, seed, in_fit=False)
        for r0, r1 in zip(a, b, strict=True):
            unit, rate = UNITS[r0.quantity], rate_label(r0.point.request_rate)
            rows.append(
                f"| {r0.point.source} | {rate} | {NAMES[r0.quantity]} | {r0.measured:.4g} {unit}"
                f" | {r0.simulated:.4g} {unit} | {r0.error:+.1%} | {r1.simulated:.4g} {unit} | {r1.error:+.1%} |"
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=4, help="replays per published run (averaged)")
    ap.add_argument("--seed", type=int, default=0, help="root seed of the replays")
    ap.add_argument("--budget", type=int, default=8192, help="v1's token budget (max_num_batched_tokens)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    print("\n".join(table(args.samples, args.seed, args.budget)))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
