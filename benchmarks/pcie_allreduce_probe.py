"""Probe, not a fit that ships: would a PCIe-specific all-reduce (bandwidth share, per-step latency) for the Ada
family explain the published L40S runs at TP 4 and 8 (benchmarks/data/published_gpu_runs.csv)?

Ada carries Hopper's factors, whose all-reduce terms were measured on NVLink (efficiency.ALLREDUCE_BUS_SHARE 0.3 of
the link, 6.6 us per log2(tp) step). This replays the L40S TP > 1 rows with a grid of (allreduce_s, interconnect) for
Ada, "fitting" on the Llama-3.1-70B bf16 TP 8 rows and holding out the FP8 TP 4 rows, and prints each row's mean TPOT
error and both groups' rms log error (docs/calibration.md quotes the result). The factors are swapped in for the run
and restored after it; nothing here changes the catalog.

Run:  PYTHONPATH=. python benchmarks/pcie_allreduce_probe.py
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from backends.gpu import efficiency as eff
from benchmarks import validate_published_gpus as vpg

LATENCIES_S = (6.6e-6, 15e-6, 25e-6, 35e-6)
SHARES = (0.3, 0.4, 0.5, 0.6)


@contextmanager
def ada_allreduce(allreduce_s: float, interconnect: float) -> Iterator[None]:
    before = eff.EFFICIENCY["ada"]
    eff.EFFICIENCY["ada"] = dataclasses.replace(before, allreduce_s=allreduce_s, interconnect=interconnect)
    try:
        yield
    finally:
        eff.EFFICIENCY["ada"] = before


def main() -> int:
    points = [p for p in vpg.load_points() if p.gpu == "l40s" and p.tp > 1]
    cols = [f"{p.quantization} TP {p.tp} @ {p.rate:g} req/s" for p in points]
    print("| allreduce_s | interconnect | " + " | ".join(cols) + " | fit rmsle (TP 8) | held-out rmsle (TP 4) |")
    print("|---" * (len(cols) + 4) + "|")
    for a in LATENCIES_S:
        for x in SHARES:
            with ada_allreduce(a, x):
                logs = [(p.tp, math.log(vpg.simulate(p) / p.measured)) for p in points]
            fit = np.sqrt(np.mean([e * e for tp, e in logs if tp == 8]))
            held = np.sqrt(np.mean([e * e for tp, e in logs if tp != 8]))
            errs = " | ".join(f"{math.expm1(e):+.0%}" for _, e in logs)
            print(f"| {a * 1e6:.1f} us | {x} | {errs} | {fit:.3f} | {held:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
