"""Events per request and the default experiment's figures under each engine option, on one short replication.

Usage: PYTHONPATH=. python benchmarks/scheduler_events.py [experiments/default.yaml] [--horizon-h 4]
       [--warmup-h 8] [--set KEY=VALUE ...]
Runs replication 0 of the config once per variant (v0 as shipped; v0 and v1 with an 8,192-token budget,
vLLM's default max_num_batched_tokens on an H100; v1 with 2,048; speculative decoding with n-gram drafting,
k = 4, acceptance 0.7, under v0 and v1) and prints the events the run
scheduled per request (pump, GPU timers, lifecycle), TTFT p95, the GPU utilization and the preemptions.
Events per request are counts, not times: they do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sim.engine.loading import load_config
from sim.engine.replication import simulate

ROOT = Path(__file__).resolve().parents[1]
P = "backends.gpu_pool."
VARIANTS = {
    "v0 (as shipped)": [],
    "v0 no chunking": [P + "max_prefill_tokens=null"],
    "v0 max_prefill_tokens 8192": [P + "max_prefill_tokens=8192"],
    "v1 budget 8192": [P + "scheduler=v1", P + "max_prefill_tokens=8192"],
    "v1 budget 2048": [P + "scheduler=v1", P + "max_prefill_tokens=2048"],
    "v0 + speculative ngram k 4 a 0.7": [P + "speculative={draft: ngram, k: 4, acceptance: 0.7}"],
    "v1 budget 8192 + speculative ngram k 4 a 0.7": [
        P + "scheduler=v1",
        P + "max_prefill_tokens=8192",
        P + "speculative={draft: ngram, k: 4, acceptance: 0.7}",
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?", default=str(ROOT / "experiments" / "default.yaml"))
    ap.add_argument("--horizon-h", type=float, default=4.0)
    ap.add_argument("--warmup-h", type=float, default=0.0)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    args = ap.parse_args()
    base = [f"horizon_h={args.horizon_h + args.warmup_h}", f"warmup_h={args.warmup_h}", *args.set]
    print("| variant | events / request | TTFT p95 (s) | GPU utilization | preemptions |")
    print("|---|---|---|---|---|")
    for name in args.variants.split(","):
        exp = load_config(args.config, [*base, *VARIANTS[name]])
        r = simulate(exp, 0)
        m = r.metrics
        print(
            f"| {name} | {r.num_events / (m['requests'] or 1):.3f} | {m['ttft_p95_s']:.3f} |"
            f" {m['gpu_utilization']:.3f} | {m.get('preemptions') or 0:.0f} |"
        )


if __name__ == "__main__":
    main()
