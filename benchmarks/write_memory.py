"""Peak resident memory of each phase of `capsim run` in one process: the replication, writing the tables, the report.

Linux only: the high-water mark (`VmHWM`, /proc/self/status) is reset between phases (`/proc/self/clear_refs`,
5), so each line's `peak` is that phase's own peak, not the process's so far. One replication, one worker, the
path `capsim run` takes (`sim.app.run_command.execute`, less its progress bar).

Usage (from the repository root):
    PYTHONPATH=. python benchmarks/write_memory.py CONFIG [--set KEY=VALUE ...] [--out DIR]
e.g. the month proxy of issue 22 (a month's 43,200 per-minute rows at a tenth of the default's traffic):
    PYTHONPATH=. python benchmarks/write_memory.py experiments/default.yaml --set horizon_h=720 \\
        --set workload.arrivals.mean_rps=1.4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def mib(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def phase(name: str, started: float) -> None:
    took = time.time() - started
    print(f"{name:<12} peak {mib('VmHWM'):7.1f} MiB   resident after {mib('VmRSS'):7.1f} MiB   {took:6.1f} s")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")  # reset VmHWM to the current resident set


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default: a temporary one)")
    args = ap.parse_args()

    t = time.time()
    from sim.engine.executor import Executor
    from sim.engine.loading import load_config
    from sim.engine.results import ResultsFolder

    exp = load_config(args.config, [*args.sets, "replications=1"])
    folder = ResultsFolder(args.out or Path(tempfile.mkdtemp(prefix="write-memory-")))
    folder.prepare(exp, resume=False)
    phase("start", t)
    t = time.time()
    from sim.engine import executor

    release = getattr(executor, "release_memory", lambda: None)  # as `execute` does (before 27e71e5: none)
    for res in Executor(workers=1).run(exp, [0]):
        release()
        folder.checkpoint(res)
    del res
    phase("replication", t)
    t = time.time()
    folder.finalize(exp)
    phase("tables", t)
    if exp.output.report:
        from sim.report import write_report

        t = time.time()
        release()
        write_report(folder.path)
        phase("report", t)
    folder.clear_partial()
    print(f"results: {folder.path}")


if __name__ == "__main__":
    main()
