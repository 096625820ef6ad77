"""What each serving-engine feature does to the default experiment's 9 a.m. peak, and to the servers `plan` sizes.

Every variant is experiments/default.yaml plus `--set` overrides (VARIANTS), so each row is reproducible with
`capsim run` / `capsim plan` and the printed overrides. All variants share the seed (common random numbers:
replication r of every variant draws the same requests, except where a variant changes the workload itself).

The window (WINDOW): the default day's 08:00-10:00 with the clock moved 8 hours earlier
(`workload.arrivals.peak_hour=1`: the diurnal curve depends on the hour only through hour - peak_hour, so the
rate at t is the default's at t + 8 h; the first 2 hours of the Tuesday either way), measured after a warm-up
of 0.75 h, so the measured 1.25 h hold the whole peak hour (`peak_ttft_p95_s` covers [1 h, 2 h), the
default's 09:00-10:00) and the response cache has reached the full day's hit rate (17%). Simulating the
night before the peak would cost three times as much for the same window.

For each variant: `--reps` replications are simulated in this process (one core), and `capsim plan` runs as a
subprocess with one worker on the config's targets (peak-hour p95 TTFT <= 2 s, availability >= 0.999, P
0.95), deciding each server count on `--plan-reps` replications (`--reps N --max-reps N`: with few
replications the point estimate decides, `meets at cap`).

Run:  PYTHONPATH=. python benchmarks/feature_effects.py [--reps 2] [--plan-reps 2] [--variants baseline,v1,...]
      [--no-plan] [--commands]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "default.yaml"
WINDOW = ("workload.arrivals.peak_hour=1", "warmup_h=0.75", "horizon_h=2")
P = "backends.gpu_pool."
H100 = "gpu: h100, model: llama-3-8b, tensor_parallel: 1, max_batch: 128, price_per_server_hour_usd: 2.69"
SESSIONS = "workload.sessions={}"  # the synthetic conversation model with its defaults (docs/workloads.md)
SESSION_SERVERS = 14  # the sessions rows run at a pool where sessions meet the targets without a cache
DISAGG = (  # the default's 3 H100s split into 1 prefill and 2 decode servers, 50 GB/s KV link
    "backends.gpu_pool={}",
    f"backends.gpu_pools.prefill={{servers: 1, {H100}, disaggregation: {{decode_pool: decode}}}}",
    f"backends.gpu_pools.decode={{servers: 2, {H100}}}",
)


def one_pool(values: dict[str, Any]) -> int:
    return int(values[P + "servers"])


def both_pools(values: dict[str, Any]) -> int:
    return int(values["backends.gpu_pools.prefill.servers"]) + int(values["backends.gpu_pools.decode.servers"])


@dataclass(frozen=True)
class Variant:
    key: str  # --variants names it
    name: str  # the table's row
    overrides: tuple[str, ...]
    vary: tuple[str, ...]  # capsim plan's --vary dimensions
    servers: Callable[[dict[str, Any]], int]  # GPUs (servers of every pool) at plan's best point


SERVERS = P + "servers=1..8"
VARIANTS = [
    Variant("baseline", "baseline (v0, one shared queue)", (), (SERVERS,), one_pool),
    Variant("v1", "scheduler v1 (budget 8192)", (P + "scheduler=v1",), (SERVERS,), one_pool),
    Variant(
        "sessions",
        "sessions, no prefix cache",
        (SESSIONS, f"{P}servers={SESSION_SERVERS}"),
        (P + "servers=6..30",),
        one_pool,
    ),
    Variant(
        "sessions-cache",
        "sessions, per-server prefix caches, least_loaded",
        (SESSIONS, f"{P}servers={SESSION_SERVERS}", P + "prefix_cache.enabled=true"),
        (P + "servers=6..30",),
        one_pool,
    ),
    Variant(
        "sessions-affinity",
        "sessions, per-server prefix caches, prefix_affinity",
        (
            SESSIONS,
            f"{P}servers={SESSION_SERVERS}",
            P + "prefix_cache.enabled=true",
            P + "server_routing.policy=prefix_affinity",
        ),
        (P + "servers=6..30",),
        one_pool,
    ),
    Variant(
        "spec",
        "speculative decoding, n-gram, k 3, acceptance 0.6",
        (P + "speculative={draft: ngram, k: 3, acceptance: 0.6}",),
        (SERVERS,),
        one_pool,
    ),
    Variant(
        "pd",
        "P/D disaggregation, 1 prefill + 2 decode",
        DISAGG,
        ("backends.gpu_pools.prefill.servers=1,2", "backends.gpu_pools.decode.servers=1..8"),
        both_pools,
    ),
]
BY_KEY = {v.key: v for v in VARIANTS}


def overrides(v: Variant) -> list[str]:
    return [*WINDOW, *v.overrides]


def mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def run_variant(v: Variant, reps: int) -> dict[str, float | None]:
    """Mean over replications 0..reps-1 of the figures the table shows."""
    from sim.engine.loading import load_config
    from sim.engine.replication import simulate

    exp = load_config(CONFIG, overrides(v))
    rows = [simulate(exp, r) for r in range(reps)]
    keys = ("ttft_p95_s", "peak_ttft_p95_s", "tpot_mean_s", "gpu_capacity_utilization", "gpu_utilization")
    out = {k: mean([r.metrics.get(k) for r in rows]) for k in (*keys, "monthly_cost_usd", "availability")}
    extra = [k for k in rows[0].breakdown if k == "gpu_prefix_hit_rate" or k.startswith("gpu_utilization.pool.")]
    out.update({k: mean([r.breakdown.get(k) for r in rows]) for k in extra})
    return out


def plan_command(v: Variant, reps: int) -> list[str]:
    cmd = ["capsim", "plan", "experiments/default.yaml"]
    for d in v.vary:
        cmd += ["--vary", d]
    for o in overrides(v):
        cmd += ["--set", o]
    return [*cmd, "--reps", str(reps), "--max-reps", str(reps), "--workers", "1", "--json", "--quiet"]


def plan_variant(v: Variant, reps: int) -> tuple[int | None, float | None]:
    """(GPUs at plan's best point, its monthly cost), or (None, None) when no point in range meets."""
    cmd = plan_command(v, reps)
    proc = subprocess.run([sys.executable, "-m", "sim", *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode == 3:
        return None, None
    if proc.returncode != 0:
        raise RuntimeError(f"capsim plan exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    doc = json.loads(proc.stdout)
    best = doc["best"]
    return v.servers(best["values"]), float(best["monthly_cost_usd"])


def fmt(x: float | None, spec: str) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2, help="replications per variant's run")
    ap.add_argument("--plan-reps", type=int, default=2, help="replications per server count in plan")
    ap.add_argument("--variants", default="", help=f"comma-separated, of {', '.join(BY_KEY)} (default: all)")
    ap.add_argument("--no-plan", action="store_true", help="skip the plan searches")
    ap.add_argument("--commands", action="store_true", help="print each variant's plan command and exit")
    args = ap.parse_args()
    chosen = [BY_KEY[k] for k in args.variants.split(",")] if args.variants else VARIANTS
    if args.commands:
        for v in chosen:
            print(f"# {v.name}\n" + " ".join(f"'{c}'" if " " in c or "{" in c else c for c in plan_command(v, 2)))
        return
    print(
        "| variant | TTFT p95 (s) | peak-hour p95 TTFT (s) | TPOT mean (ms) | capacity utilization | GPU utilization |"
        " prefix hit rate | monthly cost | GPUs plan needs | plan's monthly cost |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for v in chosen:
        t0 = time.perf_counter()
        m = run_variant(v, args.reps)
        gpus, cost = (None, None) if args.no_plan else plan_variant(v, args.plan_reps)
        pools = "; ".join(
            f"{k.rsplit('.', 1)[1]} {fmt(x, '.3f')}" for k, x in m.items() if k.startswith("gpu_utilization.pool.")
        )
        tpot = m["tpot_mean_s"]
        print(
            f"| {v.name} | {fmt(m['ttft_p95_s'], '.3f')} | {fmt(m['peak_ttft_p95_s'], '.3f')} |"
            f" {fmt(None if tpot is None else tpot * 1e3, '.2f')} | {fmt(m['gpu_capacity_utilization'], '.3f')} |"
            f" {fmt(m['gpu_utilization'], '.3f')}{f' ({pools})' if pools else ''} |"
            f" {fmt(m.get('gpu_prefix_hit_rate'), '.1%')} | ${fmt(m['monthly_cost_usd'], ',.0f')} |"
            f" {'–' if args.no_plan else (gpus if gpus is not None else 'none in range')} |"
            f" {'–' if cost is None else f'${cost:,.0f}'} |",
            flush=True,
        )
        print(f"  ({v.name}: {time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
