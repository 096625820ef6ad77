"""The GPU pool's waiting queue (backends/gpu/waiting.py) behaves as a deque of Jobs built at arrival.

A random program of arrivals (finite deadlines or none, from changing blocks, more than a chunk of them),
requeues at the front, heads and pops is run on a WaitingQueue and on a plain deque of Jobs built at once;
every head, pop, length, arrival time of the head, first deadline and the final drain must agree.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.gpu import waiting
from backends.gpu.server import Job
from backends.gpu.waiting import WaitingQueue
from sim.core.request_block import RequestBlock

BLOCKS = [
    RequestBlock(k, 0.0, 1.0, np.zeros(50), np.zeros(50, dtype=np.int16), np.arange(50) + 1, np.arange(50) + 2)
    for k in range(3)
]


def make_job(block: RequestBlock, i: int, now: float, deadline: float) -> Job:
    return Job(block, i, now, int(block.input_tokens[i]), int(block.output_tokens[i]), 0, deadline)


def key(job: Job) -> tuple[int, int, float, float]:
    return job.block.index, job.i, job.arrival_at, job.deadline


def first_deadline(model: deque[Job]) -> float:
    return next((j.arrival_at for j in model if j.deadline != math.inf), math.inf)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("arrive"), st.integers(0, 2), st.integers(0, 49), st.booleans()),
        st.tuples(st.just("front"), st.integers(0, 2), st.integers(0, 49), st.booleans()),
        st.tuples(st.just("head"), st.just(0), st.just(0), st.just(False)),
        st.tuples(st.just("pop"), st.just(0), st.just(0), st.just(False)),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(ops, st.integers(1, 5))
def test_waiting_queue_is_a_deque_of_jobs(program: list[tuple[str, int, int, bool]], chunk: int) -> None:
    saved = waiting.CHUNK_REQUESTS
    waiting.CHUNK_REQUESTS = chunk  # tiny chunks: arrivals of one block span several
    try:
        q = WaitingQueue(make_job)
        model: deque[Job] = deque()
        clock = 0.0
        for op, b, i, finite in program:
            clock += 0.25
            deadline = clock + 10.0 if finite else math.inf
            block = BLOCKS[b]
            if op == "arrive":
                q.append_arrival(block, i, clock, deadline)
                model.append(make_job(block, i, clock, deadline))
            elif op == "front":
                job = make_job(block, i, clock, math.inf)
                q.appendleft(job)
                model.appendleft(job)
            elif model:
                got = q.head() if op == "head" else q.popleft()
                want = model[0] if op == "head" else model.popleft()
                assert key(got) == key(want)
            assert len(q) == len(model) and bool(q) == bool(model)
            if model:
                assert q.head_arrival_at() == model[0].arrival_at
            assert q.first_deadline_arrival_at() == first_deadline(model)
        drained = [(blk.index, i, at, d) for _job, blk, i, at, d in q.drain()]
        assert drained == [key(j) for j in model]
        assert len(q) == 0 and not q
    finally:
        waiting.CHUNK_REQUESTS = saved
