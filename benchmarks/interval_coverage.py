"""Coverage of the across-replication 95% intervals at few replications: Student t, percentile bootstrap,
and the range-respecting interval capsim writes (sim.stats.bounded_t_interval: logit scale for proportions,
clipped at 0 for non-negative quantities).

Each "experiment" is `--reps` replications drawn from a distribution shaped like a capsim metric across
replications; coverage = the share of `--experiments` experiments whose interval holds the true mean.

    .venv/bin/python benchmarks/interval_coverage.py --reps 8 --experiments 2000

Distributions (true mean in brackets):
  p95-like    lognormal(sigma 0.35) x 0.8 s: a tail latency, right-skewed          [0.8 exp(0.35^2/2)]
  burst-p95   0.8 s, or 4 s in 15% of replications (a replication with a burst)   [0.8 + 0.15 x 3.2]
  availability 1 - Beta(0.5, 1500): mostly 0.9999.., now and then 0.998            [1 - 0.5/1500.5]
  in-flight   Poisson(0.6): a count that is often 0                               [0.6]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from sim.core.stats import bootstrap_interval, bounded_t_interval, t_interval

CASES = {
    "p95-like": (lambda g, n: 0.8 * g.lognormal(0.0, 0.35, n), 0.8 * math.exp(0.35**2 / 2), (0.0, None)),
    "burst-p95": (lambda g, n: np.where(g.random(n) < 0.15, 4.0, 0.8), 0.8 + 0.15 * 3.2, (0.0, None)),
    "availability": (lambda g, n: 1.0 - g.beta(0.5, 1500.0, n), 1.0 - 0.5 / 1500.5, (0.0, 1.0)),
    "in-flight": (lambda g, n: g.poisson(0.6, n).astype(float), 0.6, (0.0, None)),
}


def coverage(case: str, reps: int, experiments: int, seed: int = 0, n_boot: int = 2000) -> dict[str, float]:
    draw, truth, (lo, hi) = CASES[case]
    g = np.random.default_rng(seed)
    hits = {"t": 0, "bootstrap": 0, "bounded": 0}
    out_of_range = 0
    for k in range(experiments):
        x = draw(g, reps)
        t = t_interval(x)
        b = bootstrap_interval(x, n_boot=n_boot, seed=k)
        r = bounded_t_interval(x, lo, hi)
        assert t is not None and r is not None
        hits["t"] += t[1] <= truth <= t[2]
        hits["bootstrap"] += b[0] <= truth <= b[1]
        hits["bounded"] += r[1] <= truth <= r[2]
        out_of_range += (t[1] < lo) or (hi is not None and t[2] > hi)
    out = {k: v / experiments for k, v in hits.items()}
    out["t_out_of_range"] = out_of_range / experiments
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--experiments", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    se = math.sqrt(0.95 * 0.05 / args.experiments)
    print(f"{args.reps} replications, {args.experiments} experiments (binomial se of a coverage ~{se:.3f})")
    print(f"{'case':14s} {'t':>7s} {'bootstrap':>10s} {'bounded':>8s} {'t leaves range':>15s}")
    for case in CASES:
        c = coverage(case, args.reps, args.experiments, args.seed)
        print(f"{case:14s} {c['t']:7.3f} {c['bootstrap']:10.3f} {c['bounded']:8.3f} {c['t_out_of_range']:15.3f}")


if __name__ == "__main__":
    main()
