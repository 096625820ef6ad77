"""Memory of an overloaded pool while its queue is fullest: one replication stopped at simulated time T.

One H100 server (`extremes.py`'s BASE, ~18 requests/s of capacity) at `--factor` times that rate, no
timeout, over a `--horizon-h` horizon. The queue holds what the pool can still serve before the horizon, so
it is fullest about when it stops accepting (at 100x over 24 h, T ~ 1400 s). Prints the queued requests,
the bytes of the request blocks still live (their columns), those bytes per queued request, and the
process's peak RSS. A 100x day runs for hours; stopped at T it takes minutes and holds its largest queue.

    PYTHONPATH=. python benchmarks/overload_memory.py [--factor 100] [--horizon-h 24] [--until-s 1400]
"""

from __future__ import annotations

import argparse
import resource
import time

from benchmarks.extremes import BASE, CAPACITY_RPS
from sim.core.request_block import RequestBlock
from sim.engine.loading import load_config_text
from sim.engine.replication import Replication


def block_bytes(b: RequestBlock) -> int:
    return sum(v.nbytes for v in vars(b).values() if hasattr(v, "nbytes"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factor", type=float, default=100.0)
    ap.add_argument("--horizon-h", type=float, default=24.0)
    ap.add_argument("--until-s", type=float, default=1400.0)
    args = ap.parse_args()
    text = BASE.replace("mean_rps: 5", f"mean_rps: {args.factor * CAPACITY_RPS}").replace(
        "horizon_h: 1", f"horizon_h: {args.horizon_h}"
    )
    exp = load_config_text(text)
    t0 = time.process_time()
    rep = Replication(exp, 0)
    rep._load(rep.generator.blocks())
    rep.env.run(until=args.until_s)
    pool = rep.pools[0]
    assert pool is not None
    live = list(rep.live.values())
    live_bytes = sum(block_bytes(b) for b in live)
    queued = pool.queued
    cpu_s = time.process_time() - t0
    print(f"{args.factor:g}x over {args.horizon_h:g} h, stopped at t = {args.until_s:g} s ({cpu_s:.1f} CPU s)")
    print(f"queued {queued:,}; live blocks {len(live)}, {live_bytes / 2**20:.1f} MiB of columns", end="")
    print(f" ({live_bytes / max(queued, 1):.0f} bytes a queued request)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
