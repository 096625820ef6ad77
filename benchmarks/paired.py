"""Paired whole-process timing of two commands on a shared machine: A and B alternately, the ratio pair by pair.

A loaded machine moves every run's time, but two runs taken one after the other see about the same load, so
the ratio of a pair is steadier than either time. Each run is a child process; its CPU time (user + system)
and peak RSS are read from `/usr/bin/time`, its wall time from outside.

Usage:
    python benchmarks/paired.py --a "CMD A" --b "CMD B" [--pairs 5] [--warmup 1] [--work-a N] [--work-b N]
With --work-a/--work-b (requests each command simulates), the rate ratio (B's work per CPU-second over A's)
is printed as well: B against a bare SimPy baseline A is then "B's speed in units of bare SimPy".
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent


def run_once(cmd: str, root: Path = ROOT) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one run of `cmd` (a shell-free command line) in checkout `root`, the
    child alone (GNU time reports each child's own maximum resident set, unlike RUSAGE_CHILDREN's running
    maximum)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as fh:
        t0 = time.perf_counter()
        subprocess.run(
            ["/usr/bin/time", "-f", "%M %U %S", "-o", fh.name, *shlex.split(cmd)],
            check=True,
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        wall = time.perf_counter() - t0
        rss_kb, user, system = fh.read().split()[-3:]
    return wall, float(user) + float(system), float(rss_kb) / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="baseline command")
    ap.add_argument("--b", required=True, help="candidate command")
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout to run in (cwd and PYTHONPATH)")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="pairs run first and not counted")
    ap.add_argument("--work-a", type=float, default=None, help="requests A simulates (for the rate ratio)")
    ap.add_argument("--work-b", type=float, default=None, help="requests B simulates (for the rate ratio)")
    args = ap.parse_args()
    rows = []
    for i in range(args.warmup + args.pairs):
        a = run_once(args.a, args.root)
        b = run_once(args.b, args.root)
        if i >= args.warmup:
            rows.append((a, b))
            print(
                f"pair {len(rows)}: A cpu {a[1]:.3f} s wall {a[0]:.3f} s rss {a[2]:.0f} MiB | "
                f"B cpu {b[1]:.3f} s wall {b[0]:.3f} s rss {b[2]:.0f} MiB | B/A cpu {b[1] / a[1]:.4f}",
                flush=True,
            )
    cpu = sorted(b[1] / a[1] for a, b in rows)
    wall = sorted(b[0] / a[0] for a, b in rows)
    print(f"A cpu median {median(a[1] for a, _ in rows):.3f} s, B cpu median {median(b[1] for _, b in rows):.3f} s")
    print(f"B/A CPU time: median {median(cpu):.4f} (range {cpu[0]:.4f}-{cpu[-1]:.4f}); wall {median(wall):.4f}")
    print(f"peak RSS MiB: A {max(a[2] for a, _ in rows):.0f}, B {max(b[2] for _, b in rows):.0f}")
    if args.work_a and args.work_b:
        rate = sorted((args.work_b / b[1]) / (args.work_a / a[1]) for a, b in rows)
        print(f"B's rate over A's (work per CPU-s): median {median(rate):.3f} (range {rate[0]:.3f}-{rate[-1]:.3f})")


if __name__ == "__main__":
    main()
