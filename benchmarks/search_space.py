"""The multi-dimensional plan search against brute force on a space of 108 candidate configurations.

experiments/fleet-search.yaml (Qwen3-32B, a constant busiest hour) over 3 GPU types (L40S, A100, H100) x
tensor parallel 1/2/4 x 1..12 servers. Both sides decide points by the same sequential rule on the same
replications (common random numbers) and the same executor; brute force decides all 108 (no screens), the
search screens, gallops and bisects. Prints the wall time and the replications each simulated, whether they
agree on the cheapest configuration, the best point per GPU type, and writes the search's plan.json and
frontier.png into --out.

    PYTHONPATH=$PWD python benchmarks/search_space.py [--workers 2] [--reps 4] [--max-reps 8] [--out DIR]
        [--skip-exhaustive] [--cost-screen]

`--cost-screen`: the search with `capsim plan --cost-screen` (docs/planning.md); brute force is unchanged.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sim.engine.executor import Executor
from sim.engine.loading import load_config
from sim.studies.plan import resolve_options
from sim.studies.search import Search, Space, exhaustive

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "experiments" / "fleet-search.yaml"
SPACE = [
    "backends.gpu_pool.gpu=l40s,a100,h100",
    "backends.gpu_pool.tensor_parallel=1,2,4",
    "backends.gpu_pool.servers=1..12",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--max-reps", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "search-space")
    ap.add_argument("--skip-exhaustive", action="store_true")
    ap.add_argument("--cost-screen", action="store_true", help="the search skips points above the cheapest found")
    args = ap.parse_args()
    exp = load_config(str(CONFIG))
    space = Space.parse(SPACE)
    options = resolve_options(exp, None, None, args.reps, args.max_reps, cost_screen=args.cost_screen)
    with Executor(workers=args.workers).session() as runner:  # one process pool for the command, as `capsim plan`
        t0 = time.perf_counter()
        doc = Search(exp, space, options, runner, CONFIG.parent).run().to_json()
        search_s = time.perf_counter() - t0
        if not args.skip_exhaustive:
            t0 = time.perf_counter()
            brute = exhaustive(exp, space, options, runner, CONFIG.parent)
            brute_s = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "plan.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    from sim.report.charts_frontier import write_frontier_chart

    write_frontier_chart(doc, args.out / "frontier.png")
    print(
        f"space: {' x '.join(SPACE)} = {space.num_points()} candidates; "
        f"targets {doc['targets']} at P >= {doc['confidence']}"
    )
    print(f"| method | wall s ({args.workers} workers) | points simulated | replications | best | monthly cost |")
    print("|---|---:|---:|---:|---|---:|")
    best = doc["best"]["values"] if doc["best"] else None
    print(
        f"| search | {search_s:.1f} | {len(doc['tried'])} (+{len(doc['screened'])} screened) | "
        f"{doc['replications_simulated']} | {_short(best)} | {_usd(doc['monthly_cost_usd'])} |"
    )
    if not args.skip_exhaustive:
        print(
            f"| exhaustive | {brute_s:.1f} | {brute['points']} | {brute['replications_simulated']} | "
            f"{_short(brute['best'])} | {_usd(brute['monthly_cost_usd'])} |"
        )
        print(f"same best: {brute['best'] == best}")
    print("\n| GPU | best point | monthly cost (95% CI) | P(meet) |")
    print("|---|---|---:|---:|")
    for gpu, b in sorted(doc["best_by_gpu"].items(), key=lambda kv: kv[1]["monthly_cost_usd"]):
        lo, hi = b["monthly_cost_ci95"]
        print(
            f"| {gpu} | {_short(b['values'])} | {_usd(b['monthly_cost_usd'])} ({_usd(lo)}..{_usd(hi)}) "
            f"| {b['p_meet']:.2f} |"
        )


def _short(values: dict | None) -> str:  # type: ignore[type-arg]
    if not values:
        return "-"
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in values.items())


def _usd(v: float | None) -> str:
    return "-" if v is None else f"${v:,.0f}"


if __name__ == "__main__":
    main()
