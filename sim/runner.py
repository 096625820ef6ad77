"""The Monte Carlo runner: replications fanned out to a local process pool (or Dask), streamed back.

A task is (config, replication index) and returns plain data, so results do not depend on which worker ran
which replication, nor on how many workers there were.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from sim.config import Experiment
from sim.replication import ReplicationResult, simulate


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _run_bundle(exp: Experiment, reps: list[int]) -> list[ReplicationResult]:
    return [simulate(exp, r) for r in reps]


def run_replications(
    exp: Experiment,
    replications: Iterable[int],
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
    fn: Callable[[Experiment, int], ReplicationResult] = simulate,
) -> Iterator[ReplicationResult]:
    """Yield results as replications finish (in completion order; callers sort by index)."""
    reps = list(replications)
    if not reps:
        return
    workers = workers or default_workers()
    if executor == "dask":
        from sim.dask_executor import run_on_dask

        yield from run_on_dask(exp, reps, workers, address)
        return
    if workers <= 1 or len(reps) == 1:
        for r in reps:
            yield fn(exp, r)
        return
    # a few tasks in flight per worker keeps both cores busy without queueing the whole run
    with ProcessPoolExecutor(max_workers=min(workers, len(reps))) as pool:
        pending: set[Future[ReplicationResult]] = set()
        it = iter(reps)
        try:
            for r in it:
                pending.add(pool.submit(fn, exp, r))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
                    nxt = next(it, None)
                    if nxt is not None:
                        pending.add(pool.submit(fn, exp, nxt))
        finally:
            for f in pending:
                f.cancel()
