"""Profile one replication of a benchmark scenario in-process and print the top functions by own time.

Usage: PYTHONPATH=. python benchmarks/profile_scenario.py [benchmarks/scenarios/weekday.yaml] [--top 15]
cProfile roughly doubles the run time; read the entries as shares, not as seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
from pathlib import Path

from sim.engine.loading import load_config
from sim.engine.replication import simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?", default=str(Path(__file__).parent / "scenarios" / "weekday.yaml"))
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    exp = load_config(args.config)
    prof = cProfile.Profile()
    prof.enable()
    result = simulate(exp, 0)
    prof.disable()
    print(f"{result.metrics['requests']:,.0f} requests, {result.num_events:,} events")
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
