"""Overload keeps memory flat: the exact peak-concurrency sweep holds only events after its frontier, not
the blocks that finish behind a block still waiting for the GPU queue (sim/engine/recorder.py ConcurrencyPeak)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.core.request_block import PENDING, RequestBlock
from sim.engine.replication import Replication
from tests.test_extremes import exp_of
from workloads.generator import TARGET_BLOCK_REQUESTS


def brute_force_peak(cols: dict[str, np.ndarray]) -> int:
    """max over time of arrived - finished, ends before arrivals at equal times (requests.parquet columns)."""
    arr = cols["arrival_at"]
    ends = cols["done_at"][(cols["status"] != PENDING) & np.isfinite(cols["done_at"])]
    times = np.concatenate([arr, ends])
    deltas = np.concatenate([np.ones(len(arr), dtype=np.int64), -np.ones(len(ends), dtype=np.int64)])
    order = np.lexsort((deltas, times))
    return int(np.cumsum(deltas[order]).max()) if len(times) else 0


CASES = {
    "normal": ["workload.arrivals.mean_rps=5"],
    "overload_20x": ["workload.arrivals.mean_rps=400"],
    "overload_timeout": ["workload.arrivals.mean_rps=400", "workload.classes.0.timeout_s=5"],
    "overflow_api_rate_limited": [
        "workload.arrivals.mean_rps=100",
        "routing.policy=overflow",
        "backends.api.rate_limit.rpm=600",
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_peak_concurrency_is_exact(case: str) -> None:
    exp = exp_of(*CASES[case], "horizon_h=0.03", "output.requests=true")
    res = Replication(exp, 0).run()
    assert res.requests is not None
    assert res.metrics["peak_concurrency"] == brute_force_peak(res.requests)


def test_overload_holds_what_can_be_served_not_what_arrives() -> None:
    """At 10x and 100x overload: the GPU queue never holds more requests than about what the pool can
    still serve (the rest are recorded at once as in flight at the horizon, without a Job), those it holds
    wait as columns with only a batch's worth of Job objects at its front (backends/gpu/waiting.py), and the
    concurrency sweep holds fewer events than one block of requests, whatever the factor. Before: the queue
    bound let several times the served count wait as Jobs, and the sweep held every arrival of every block
    behind the first one (which waits for the GPU queue)."""
    for factor, hours in ((10, 0.2), (100, 0.03)):  # both about 130-190 thousand requests, 3-4 blocks
        exp = exp_of(f"workload.arrivals.mean_rps={18 * factor}", f"horizon_h={hours}", "output.timeseries=false")
        rep = Replication(exp, 0)
        pool = rep.pool
        assert pool is not None
        held: list[int] = []
        jobs: list[int] = []
        most_queued = [0]
        fold, count_in = rep.recorder.block_done, pool.queue._count_in

        def watch(block, fold=fold, rep=rep, held=held, jobs=jobs, pool=pool):  # type: ignore[no-untyped-def]
            fold(block)
            held.append(rep.recorder.concurrency.num_buffered)
            jobs.append(sum(len(q.jobs) for q in pool.queue.queues.values()))

        def count(deadline, count_in=count_in, pool=pool, most=most_queued):  # type: ignore[no-untyped-def]
            count_in(deadline)
            most[0] = max(most[0], pool.queued)

        rep.recorder.block_done = watch  # type: ignore[method-assign]
        pool.queue._count_in = count  # type: ignore[method-assign]
        m = rep.run().metrics
        assert m["in_flight"] > 0.8 * m["requests"]  # nearly everything still waits at the horizon
        assert m["requests"] > 2.5 * TARGET_BLOCK_REQUESTS  # several blocks finish behind the first
        assert held and max(held) < TARGET_BLOCK_REQUESTS, (factor, held)
        assert pool.bound.jobless > 0.8 * m["requests"]
        assert most_queued[0] < 3 * m["served"] + exp.backends.gpu_pool.max_batch, (factor, most_queued, m["served"])
        assert most_queued[0] > 10 * max(jobs), (factor, most_queued, max(jobs))  # most wait without a Job
        assert max(jobs) <= exp.backends.gpu_pool.max_batch + 1, (factor, jobs)  # preempted ones and the head


def test_api_draws_are_taken_when_needed_in_block_order() -> None:
    """backends/api/dispatch.py takes a block's API latency draws at its first API call, in block order:
    an overloaded pool with no API route holds none (16 bytes a queued request before), and the draws
    each block gets are the ones drawing every block on arrival gives (the streams serve only them)."""
    exp = exp_of("workload.arrivals.mean_rps=1800", "horizon_h=0.03", "output.timeseries=false")
    rep = Replication(exp, 0)
    rep.run()
    assert len(rep.router.dispatch.drawn) == 0 and len(rep.router.dispatch.undrawn) >= 2

    def eager(exp):  # type: ignore[no-untyped-def]
        api = Replication(exp, 0).apis[0]
        return [api.draw_block(n) for n in (5, 7, 3)]

    lazy = Replication(exp, 0).router.dispatch
    blocks = [
        RequestBlock(k, 0.0, 1.0, np.zeros(n), np.zeros(n, np.int16), np.ones(n, np.int64), np.ones(n, np.int64))
        for k, n in enumerate((5, 7, 3))
    ]
    for b in blocks:
        lazy.draw(b)
    del blocks[1]  # a block gone before its draws were needed: drawn and dropped in its turn
    got = [lazy.draws(blocks[1]), lazy.draws(blocks[0])]
    want = eager(exp)
    for (ttft, delay), (a, b) in zip(got, [want[2], want[0]], strict=True):
        assert np.array_equal(ttft[0], a) and np.array_equal(delay[0], b)
