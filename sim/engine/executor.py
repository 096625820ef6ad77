"""The Monte Carlo runner: replications fanned out to a local process pool (or Dask), streamed back.

`Executor` says where replications run (`kind`: local or dask, `workers`, a Dask `address`); every command,
study and the Python API take one instead of the three loose values. A task is (config, replication index)
and returns plain data, so results do not depend on which worker ran which replication, nor on how many
workers there were, nor on the executor.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from sim.config import Experiment
from sim.engine.bundle import default_workers
from sim.engine.replication import ReplicationResult, simulate

KINDS = ("local", "dask")


@dataclass(frozen=True)
class Executor:
    """Where replications run: `local` (a process pool of `workers`, default: the cores) or `dask` (the
    cluster at `address`, or a local cluster of `workers` processes started for the run)."""

    kind: str = "local"
    workers: int | None = None
    address: str | None = None
    # within `session()`, local: one process pool for every run of the command (not part of what it is)
    shared: SharedPool | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"executor: must be local or dask, got {self.kind!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers: must be >= 1, got {self.workers}")

    @contextmanager
    def session(self) -> Iterator[Executor]:
        """For a command that runs many experiments (sweep, plan, breakeven, paired): with `dask` and no
        address, one local cluster for the whole command instead of one per run; local with several
        workers, one process pool for the whole command instead of one per run (a plan runs a few
        replications at a time, dozens of times); otherwise this executor."""
        if self.kind == "dask" and not self.address:
            from sim.engine.dask_cluster import local_cluster

            with local_cluster(self.workers or default_workers()) as addr:
                yield replace(self, address=addr)
        elif self.kind == "local" and self.shared is None and (self.workers or default_workers()) > 1:
            shared = SharedPool(self.workers or default_workers())
            try:
                yield replace(self, shared=shared)
            finally:
                shared.close()
        else:
            yield self

    def metrics(self, exp: Experiment, replications: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Per-replication metrics of the given replication indices, keyed by index."""
        return {r.replication: dict(r.metrics) for r in self.run(exp, replications)}

    def run(
        self,
        exp: Experiment,
        replications: Iterable[int],
        fn: Callable[[Experiment, int], ReplicationResult] = simulate,
        on_partial: Callable[[float], None] | None = None,
    ) -> Iterator[ReplicationResult]:
        """Yield results as replications finish (in completion order; callers sort by index).

        `on_partial`, when given, is called now and then with the replications' worth of work done in the
        replications still running (e.g. 1.5: three half-done replications), for a progress bar that moves
        within a replication (sim.engine.live). Dask runs report finished replications only.
        """
        reps = list(replications)
        if not reps:
            return
        workers = self.workers or default_workers()
        if self.kind == "dask":
            from sim.engine.dask_cluster import run_on_dask

            yield from run_on_dask(exp, reps, workers, self.address)
            return
        if workers <= 1 or len(reps) == 1:
            yield from _run_inline(exp, reps, fn, on_partial)
            return
        yield from _run_pool(exp, reps, workers, fn, on_partial, self.shared)


def _run_inline(
    exp: Experiment,
    reps: list[int],
    fn: Callable[[Experiment, int], ReplicationResult],
    on_partial: Callable[[float], None] | None,
) -> Iterator[ReplicationResult]:
    from sim.engine import live

    for r in reps:
        tell = (lambda _r, f: on_partial(f)) if on_partial is not None else None
        with live.reporting_to(tell):
            result = fn(exp, r)
        if on_partial is not None:
            on_partial(0.0)
        yield result


def release_memory() -> None:
    """Free the finished simulation's state now and give the freed heap back to the system (glibc's
    malloc_trim; elsewhere nothing more), so what runs next (another replication, writing the results with
    pandas and pyarrow, the report) starts from a low resident set instead of stacking on the simulation's.
    A month of the default left ~50 MiB resident after its replication, ~30 MiB of it in reference cycles;
    pyarrow's own pool (when loaded: after writing the tables, before the report) held ~10 MiB more.
    Called by `run_command.execute` before it writes each replication and before the report, not after every
    replication a study runs in-process: there it cost a plan 1.15x its CPU (the next replication refaults
    the heap that was given back)."""
    import ctypes
    import gc

    gc.collect()
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl; Windows has no CDLL(None))
        return
    trim(0)


class SharedPool:
    """A session's process pool, started at its first run and kept for the next (`Executor.session`).

    Its workers' progress slots are indexed by replication modulo `NUM_SLOTS` (the replications in flight
    at once are a handful of consecutive indices). A run that ends early (Ctrl-C, an error, a caller that
    stops reading) stops the workers, and the next run starts a fresh pool."""

    NUM_SLOTS = 4096

    def __init__(self, workers: int):
        import multiprocessing

        self.workers = workers
        self.slots = multiprocessing.Array("d", self.NUM_SLOTS, lock=False)
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = _start_pool(self.workers, self.slots)
        return self._pool

    def abort(self) -> None:
        if self._pool is not None:
            abort_pool(self._pool)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _start_pool(workers: int, slots: Any) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(slots,))


def _run_pool(
    exp: Experiment,
    reps: list[int],
    workers: int,
    fn: Callable[[Experiment, int], ReplicationResult],
    on_partial: Callable[[float], None] | None,
    shared: SharedPool | None = None,
) -> Iterator[ReplicationResult]:
    if shared is not None:
        pool, slots = shared.pool(), shared.slots
    else:
        import multiprocessing

        # one slot per replication in flight (indexed by replication modulo its size), written by the workers
        slots = multiprocessing.Array("d", max(reps) + 1 if max(reps) < 1_000_000 else 0, lock=False)
        pool = _start_pool(min(workers, len(reps)), slots)

    def submit(r: int) -> Future[ReplicationResult]:
        if len(slots):
            slots[r % len(slots)] = 0.0
        return pool.submit(fn, exp, r)

    finished = False
    try:
        pending: dict[Future[ReplicationResult], int] = {}
        it = iter(reps)
        for r in it:
            # a few tasks in flight per worker keeps both cores busy without queueing the whole run
            pending[submit(r)] = r
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, _ = wait(pending, timeout=0.5 if on_partial else None, return_when=FIRST_COMPLETED)
            for f in done:
                pending.pop(f)
                yield f.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending[submit(nxt)] = nxt
            if on_partial is not None and len(slots):
                on_partial(sum(slots[r % len(slots)] for r in pending.values()))
        finished = True
    finally:
        if finished:
            if shared is None:
                pool.shutdown(wait=True)
        elif shared is not None:  # Ctrl-C, an error, or the caller stopped early: stop the running replications
            shared.abort()
        else:
            abort_pool(pool)


def _worker_init(slots: Any = None) -> None:
    """In each worker: leave Ctrl-C to the parent (which stops the pool), let the parent's SIGTERM (how
    `abort_pool` stops a worker) end it silently instead of running the handler a fork inherited from the
    parent (which raised in the middle of a replication and printed a traceback), die with the parent, and
    tell progress within a replication through the shared slots (sim.engine.live)."""
    from sim.engine import live

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    live.use_array(slots)


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent is already gone
        os._exit(1)


def abort_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel queued tasks, stop the worker processes now, and reap them (no orphans, no waiting)."""
    found = getattr(pool, "_processes", None)  # private, but the only handle on the workers
    procs = list(found.values()) if isinstance(found, dict) else []
    for p in procs:
        if p.is_alive():
            p.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
    for p in procs:
        p.join(timeout=5)
