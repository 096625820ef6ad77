"""A local session keeps one process pool for every run of a command (a plan asks for a few replications
dozens of times): the same workers serve each run, the results equal one worker's, a run stopped early stops
its workers and the next run starts a fresh pool, and the pool is gone when the session ends."""

from __future__ import annotations

import os
from typing import Any

from sim.config import Experiment
from sim.engine.executor import Executor
from tests.planning_configs import load, mgc_config


def _worker_pid(_exp: Experiment, r: int) -> Any:
    return r, os.getpid()


def test_session_reuses_one_pool_with_identical_results() -> None:
    exp = load(mgc_config(servers=5, horizon_h=0.05))
    alone = {r.replication: r.metrics for r in Executor(workers=1).run(exp, range(6))}
    with Executor(workers=2).session() as ex:
        shared = ex.shared
        assert shared is not None
        first = {r.replication: r.metrics for r in ex.run(exp, [0, 1, 2])}
        pool = shared.pool()
        second = {r.replication: r.metrics for r in ex.run(exp, [3, 4, 5])}
        assert shared.pool() is pool  # the second run found the first run's pool
        pids = {pid for _r, pid in ex.run(exp, range(8), fn=_worker_pid)}
        assert 1 <= len(pids) <= 2 and os.getpid() not in pids
        with ex.session() as inner:  # a session within a session is the same one
            assert inner.shared is shared
    assert shared._pool is None  # shut down with the session
    assert {**first, **second} == alone


def test_a_run_stopped_early_stops_its_workers_and_the_next_starts_afresh() -> None:
    exp = load(mgc_config(servers=5, horizon_h=0.05))
    with Executor(workers=2).session() as ex:
        assert ex.shared is not None
        it = ex.run(exp, range(6))
        next(it)
        procs = list(ex.shared.pool()._processes.values())  # type: ignore[union-attr]
        it.close()  # the caller stops reading: the workers are stopped, not waited for
        assert ex.shared._pool is None and procs and not any(p.is_alive() for p in procs)
        again = {r.replication: r.metrics for r in ex.run(exp, [2, 3])}
    alone = {r.replication: r.metrics for r in Executor(workers=1).run(exp, [2, 3])}
    assert again == alone
