"""The figures of the API / cache / routing issue, computed through the simulator (tests/test_api_*.py,
tests/test_cache_*.py and tests/test_routing_*.py assert the same things at smaller sizes).

    PYTHONPATH=$PWD python benchmarks/hybrid_figures.py [--reps 8]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from sim.engine.loading import load_config_text
from sim.engine.replication import simulate
from workloads.popularity import ZipfPopularity

BILL = """
name: bill
seed: 11
horizon_h: 1
workload:
  arrivals: {kind: constant, mean_rps: 10}
  classes:
    - {name: interactive, share: 0.6, input_tokens: {dist: constant, value: 800},
       output_tokens: {dist: constant, value: 200}}
    - {name: batch, share: 0.4, input_tokens: {dist: constant, value: 800},
       output_tokens: {dist: constant, value: 200}, slo_ttft_s: 86400}
routing: {policy: api_only}
backends:
  api: {price_input_per_mtok_usd: 2.50, price_cached_input_per_mtok_usd: 0.25, price_output_per_mtok_usd: 10.0}
"""
H100 = """
name: h100-month
horizon_h: 730
workload:
  arrivals: {kind: constant, mean_rps: 0.005}
routing: {policy: gpu_only}
backends:
  gpu_pool: {servers: 1, price_per_server_hour_usd: 2.69}
costs: {hours_per_month: 730}
"""
OUTAGES = """
name: outages
seed: 21
horizon_h: 1000
workload:
  arrivals: {kind: constant, mean_rps: 0.04}
  classes: [{name: a, share: 1.0, input_tokens: {dist: constant, value: 100},
             output_tokens: {dist: constant, value: 20}}]
cache:
  response: {enabled: false, capacity: 100000, ttl_s: 3600, distinct_prompts: 50000, zipf_s: 1.0}
routing: {policy: api_only, fallback: none, fallback_target: "api:backup"}
backends:
  api: {outages: {mtbf_h: 10, mttr_h: 0.5}}
  apis:
    backup: {outages: {mtbf_h: 10, mttr_h: 0.5}}
"""
RPM = """
name: rpm
seed: 3
horizon_h: 1
workload:
  arrivals: {kind: constant, mean_rps: 15}
  classes: [{name: a, share: 1.0, input_tokens: {dist: constant, value: 100},
             output_tokens: {dist: constant, value: 50}}]
routing: {policy: api_only}
backends:
  api: {rate_limit: {rpm: 600, max_retries: 5, backoff_s: 1.0}}
output: {requests: true}
"""


def run(text: str, *overrides: str, rep: int = 0):
    return simulate(load_config_text(text, overrides), rep)


def bill() -> None:
    print("## The bill (through the simulator's cost path)")
    a, b = run(BILL), run(BILL, "cache.prompt.cached_input_fraction=0.4")

    def spend(r):
        return r.breakdown["cost_api_usd.tokens.input"] + r.breakdown["cost_api_usd.tokens.cached_input"]

    print(
        f"- 40% of input tokens cached at 10% of the price: input spend ${spend(a):.4f} -> ${spend(b):.4f}, "
        f"cut {100 * (1 - spend(b) / spend(a)):.4f}%"
    )
    by = run(BILL, "routing.policy=by_class", "routing.by_class={interactive: api, batch: api_batch}")
    share = a.breakdown["cost_api_usd.class.batch"] / a.metrics["cost_api_usd"]
    cut = 1 - by.metrics["cost_api_usd"] / a.metrics["cost_api_usd"]
    print(
        f"- 40% batch class via the batch API at 50%: spend ${a.metrics['cost_api_usd']:.4f} -> "
        f"${by.metrics['cost_api_usd']:.4f}, cut {100 * cut:.3f}% (= 0.5 x realised batch share "
        f"{100 * share:.3f}% of requests' spend; {a.metrics['requests']:.0f} requests)"
    )
    m = run(H100).metrics
    f = run(H100, "costs.fixed_monthly_usd=1000").metrics
    print(
        f"- one H100 at $2.69/h over 730 h: monthly_cost_usd = ${m['monthly_cost_usd']:,.2f}; "
        f"with $1,000 fixed: ${f['monthly_cost_usd']:,.2f}\n"
    )


def outages(reps: int) -> None:
    print(f"## Outages, MTBF 10 h / MTTR 0.5 h, {reps} replications x 1000 h (10/10.5 = {10 / 10.5:.4f})")
    print("| fallback | availability | uptime | failed | fallbacks | degraded | cache hits |")
    print("|---|---|---|---|---|---|---|")
    variants = [
        ("none", []),
        ("api -> second provider (independent outages)", ["routing.fallback=api"]),
        ("none, response cache on", ["cache.response.enabled=true"]),
        ("cache (stale answers, TTL 1 h)", ["routing.fallback=cache", "cache.response.enabled=true"]),
    ]
    for label, ov in variants:
        ms = [run(OUTAGES, *ov, rep=r).metrics for r in range(reps)]

        def cell(k: str, ms=ms) -> str:
            x = np.array([m[k] for m in ms], dtype=float)
            return f"{x.mean():.4f} ± {1.96 * x.std(ddof=1) / math.sqrt(len(x)):.4f}"

        kinds = ("failed", "fallbacks", "degraded", "cache_hits")
        counts = " | ".join(f"{np.mean([m[k] for m in ms]):,.0f}" for k in kinds)
        print(f"| {label} | {cell('availability')} | {cell('uptime')} | {counts} |")
    print(f"(independent providers: 1 - (0.5/10.5)^2 = {1 - (0.5 / 10.5) ** 2:.4f})\n")


def rate_limit() -> None:
    print("## 600 RPM under 900 offered per minute (1 h, rpm_burst_s = 1, max_retries 5, backoff 1 s doubling)")
    r = run(RPM)
    q, m = r.requests, r.metrics
    ok = q["status"] == 1
    per_min = np.bincount((q["start_at"][ok] // 60).astype(np.int64), minlength=60)[:60]
    print(
        f"- accepted calls per minute: first minute {per_min[0]}, minutes 2-60 max {per_min[1:].max()}, "
        f"mean {per_min[1:].mean():.1f}"
    )
    print(
        f"- requests {m['requests']:,}, served {m['served']:,}, failed {m['failed']:,} (retries exhausted "
        f"{m['api_retries_exhausted']:,}), in flight {m['in_flight']:,}; 429 answers {m['api_rate_limited']:,}, "
        f"retries {m['api_retries']:,}; p95 TTFT {m['ttft_p95_s']:.1f} s\n"
    )


def che() -> None:
    from scipy.optimize import brentq

    from backends.cache.response import ResponseCache
    from sim.config.cache import ResponseCacheSpec

    print("## LRU response cache vs Che's approximation (Zipf over 20,000 prompts; 150k requests, first 50k warm-up)")
    print("| zipf s | capacity | simulated hit rate | Che | difference (points) |")
    print("|---|---|---|---|---|")
    n = 20_000
    for s, caps in [(0.8, [20, 200, 2000, 8000]), (1.1, [10, 100, 1000])]:
        zipf = ZipfPopularity(n, s)
        p = zipf.probabilities(np.arange(1, n + 1))
        for c in caps:
            keys = zipf.sample(np.random.default_rng(c), 150_000)
            cache = ResponseCache(ResponseCacheSpec(enabled=True, capacity=c, ttl_s=1e12))
            sim = float(cache.lookup_block(keys, np.arange(len(keys), dtype=float))[50_000:].mean())
            hi = 1.0
            while np.sum(-np.expm1(-p * hi)) < c:
                hi *= 2
            t_c = brentq(lambda t, c=c, p=p: float(np.sum(-np.expm1(-p * t))) - c, 0.0, hi, xtol=1e-9 * hi)
            approx = float(np.sum(p * -np.expm1(-p * t_c)))
            print(f"| {s} | {c:,} | {sim:.4f} | {approx:.4f} | {100 * (sim - approx):+.2f} |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=8)
    args = ap.parse_args()
    bill()
    rate_limit()
    che()
    outages(args.reps)


if __name__ == "__main__":
    main()
