"""Overflow routing against GPU-only and API-only on the same day (common random numbers).

Every variant runs the same replications of experiments/self_hosted_overflow.yaml (same seed, so the same
arrivals, sizes and API latencies); only routing and the pool size change. Prints a markdown table of the
9 a.m. peak's p95 TTFT (all requests and the chat class), SLO attainment, the API share and the monthly cost.

    PYTHONPATH=$PWD python benchmarks/overflow_table.py [--reps 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from sim.engine.executor import Executor
from sim.engine.loading import load_config

CONFIG = Path(__file__).resolve().parent.parent / "experiments" / "self_hosted_overflow.yaml"

VARIANTS: list[tuple[str, list[str]]] = [
    ("GPU-only, 1 H100", ["routing.policy=gpu_only"]),
    ("GPU-only, 2 H100 (peak-sized)", ["routing.policy=gpu_only", "backends.gpu_pool.servers=2"]),
    ("API-only", ["routing.policy=api_only"]),
    ("overflow, queue > 4/server, 1 H100", ["routing.overflow.trigger=queue"]),
    ("overflow, predicted wait > SLO/2, 1 H100", []),
]
COLUMNS = [
    ("peak p95 TTFT s", "peak_ttft_p95_s"),
    ("peak p95 TTFT chat s", "peak_ttft_p95_s.class.chat"),
    ("SLO attainment", "slo_attainment"),
    ("via API %", "api_share"),
    ("API $/day", "cost_api_usd"),
    ("GPU $/day", "cost_gpu_usd"),
    ("monthly $", "monthly_cost_usd"),
]


def fmt(values: list[float]) -> str:
    x = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if len(x) == 0:
        return "-"
    m = x.mean()
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else 0.0
    digits = 3 if abs(m) < 10 else 1 if abs(m) < 1000 else 0
    return f"{m:,.{digits}f} ± {half:,.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(f"config: {CONFIG.name}, {args.reps} replications per variant (common random numbers), 24 h weekday\n")
    print("| variant | " + " | ".join(c for c, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for label, overrides in VARIANTS:
        exp = load_config(CONFIG, [*overrides, "output.timeseries=false"])
        rows = []
        for res in Executor(workers=args.workers).run(exp, range(args.reps)):
            row = {**res.metrics, **res.breakdown}
            row["api_share"] = 100.0 * row["served_by_api"] / row["requests"]
            rows.append(row)
        cells = [fmt([r[key] for r in rows]) for _, key in COLUMNS]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
