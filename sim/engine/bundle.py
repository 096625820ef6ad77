"""A bundle of replications run in one task: what a local worker or a Dask worker executes."""

from __future__ import annotations

import os

from sim.config import Experiment
from sim.engine.replication import ReplicationResult, simulate


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def run_bundle(exp: Experiment, reps: list[int]) -> list[ReplicationResult]:
    return [simulate(exp, r) for r in reps]
