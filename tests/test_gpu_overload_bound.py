"""The GPU pool's overload bound (backends/gpu/overload_bound.py) at its threshold, worked out by hand."""

from __future__ import annotations

import math

import numpy as np
from gpu_support import make_block

from backends.gpu.overload_bound import OverloadBound
from backends.gpu.server import Job
from sim.core.request_block import DROPPED, PENDING


def _job(priority: int, rem_out: int, prefill: int) -> Job:
    b = make_block(np.array([0.0]), np.array([prefill]), np.array([rem_out]))
    return Job(b, 0, 0.0, prefill, rem_out, priority, math.inf)


def test_overload_bound_refuses_exactly_past_the_capacity_left() -> None:
    # one server, batch of one, horizon 100 s; a request's least share of an iteration 1 s, prefill 0.01 s/token:
    # w = 10 * 1 s + 100 * 0.01 s = 11 s each
    bound = OverloadBound([0, 1], 100.0, 1.0, 0.01, num_servers=1, max_batch=1)
    jobs = [_job(0, 10, 100) for _ in range(9)]
    for j in jobs:
        bound.add(j)
    assert jobs[0].work_ns == 11_000_000_000
    # ahead 99 s less the slack of the last one still running (1 server * batch 1 * max w = 11 s, plus 1 ns):
    # refused once that exceeds the server-time left, 100 s - now: from now = 12 s on (12 s itself: 1 ns short)
    assert not bound.refuses(0, 0.0) and not bound.refuses(0, 12.0)
    assert bound.refuses(0, 12.5) and bound.refuses(1, 12.5)  # priority 1 waits behind all of priority 0
    bound.remove(jobs[0])
    assert bound.sure_work_ns[0] == 8 * 11_000_000_000
    # a request that cannot be admitted is recorded as it will end: in flight, or dropped at its deadline
    b = make_block(np.array([0.0, 0.0]), np.array([1, 1]), np.array([1, 1]))
    bound.record_jobless(b, 0, 1, math.inf)
    bound.record_jobless(b, 1, 0, 50.0)
    assert (b.status[0], b.status[1], b.done_at[1]) == (PENDING, DROPPED, 50.0)
    assert (bound.never_admitted, bound.jobless, bound.blocked_from, b.pending) == (1, 2, 1, 0)
    assert bound.refuses(1, 0.0) and not bound.refuses(0, 0.0)  # every later arrival at its priority or lower
