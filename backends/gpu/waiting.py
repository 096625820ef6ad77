"""One priority's queue of the GPU pool: requests waiting for a batch, FCFS, in memory that costs bytes each.

Under overload the queue holds every request the pool may still admit before the horizon: at 100x on one
server for a day, the first ~20 minutes of arrivals (two million requests) wait for hours. A `Job` (the
pool's state of a request it runs) costs about 280 bytes with its boxed numbers, so the queue holds only the
few Jobs at its front: requests put back by a preemption or a failed server, and the head once it has been
looked at. Fresh arrivals behind them wait as three columns (the request's index in its block, its arrival
time as the clock read it, its deadline) in chunks of one block each: 12 bytes a request (20 with a finite
deadline). The Job is built when the request reaches the front, from the same numbers the arrival had (its
token counts are read from its block, which the pool does not change while it waits), so the simulation is
the same with either representation.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable, Iterator

from backends.gpu.server import Job
from sim.core.request_block import RequestBlock

CHUNK_REQUESTS = 4096  # arrivals per chunk: memory is freed a chunk at a time as the queue drains


class _Chunk:
    """Consecutive fresh arrivals of one block: their columns, and how many have left from the front."""

    __slots__ = ("block", "idx", "now", "deadline", "pos", "finite")

    def __init__(self, block: RequestBlock):
        self.block = block
        self.idx = array("i")
        self.now = array("d")
        self.deadline: array[float] | None = None  # only once a finite deadline comes (inf before it)
        self.pos = 0
        self.finite: deque[int] = deque()  # positions of finite deadlines, in order

    def __len__(self) -> int:
        return len(self.idx) - self.pos


class WaitingQueue:
    """FCFS queue of one priority: Jobs at the front, fresh arrivals as columns behind them.

    `make_job(block, i, now, deadline)` builds the Job of a fresh arrival when it reaches the front."""

    __slots__ = ("jobs", "chunks", "tail_len", "make_job")

    def __init__(self, make_job: Callable[[RequestBlock, int, float, float], Job]):
        self.jobs: deque[Job] = deque()
        self.chunks: deque[_Chunk] = deque()
        self.tail_len = 0
        self.make_job = make_job

    def __len__(self) -> int:
        return len(self.jobs) + self.tail_len

    def __bool__(self) -> bool:
        return bool(self.jobs) or self.tail_len > 0

    def append_arrival(self, block: RequestBlock, i: int, now: float, deadline: float) -> None:
        """A fresh arrival joins the back (no Job yet)."""
        chunks = self.chunks
        c = chunks[-1] if chunks else None
        if c is None or c.block is not block or len(c.idx) >= CHUNK_REQUESTS:
            c = _Chunk(block)
            chunks.append(c)
        n = len(c.idx)
        c.idx.append(i)
        c.now.append(now)
        if deadline != math.inf:
            if c.deadline is None:
                c.deadline = array("d", [math.inf]) * n
            c.finite.append(n)
        if c.deadline is not None:
            c.deadline.append(deadline)
        self.tail_len += 1

    def appendleft(self, job: Job) -> None:
        """A request put back at the front (preempted, or its server stopped)."""
        self.jobs.appendleft(job)

    def head(self) -> Job:
        """The request at the front, as a Job (built now if it waited as columns). The queue is not empty."""
        if not self.jobs:
            self.jobs.append(self._pop_tail())
        return self.jobs[0]

    def popleft(self) -> Job:
        return self.jobs.popleft() if self.jobs else self._pop_tail()

    def _pop_tail(self) -> Job:
        c = self.chunks[0]
        k = c.pos
        deadline = math.inf
        if c.finite and c.finite[0] == k:
            c.finite.popleft()
        if c.deadline is not None:
            deadline = c.deadline[k]
        job = self.make_job(c.block, c.idx[k], c.now[k], deadline)
        c.pos = k + 1
        self.tail_len -= 1
        if c.pos == len(c.idx):
            self.chunks.popleft()
        return job

    def head_arrival_at(self) -> float:
        """Arrival time of the front request (the queue is not empty)."""
        if self.jobs:
            return self.jobs[0].arrival_at
        c = self.chunks[0]
        return c.now[c.pos]

    def first_deadline_arrival_at(self) -> float:
        """Arrival time of the first request with a finite deadline (inf if none)."""
        for job in self.jobs:
            if job.deadline != math.inf:
                return job.arrival_at
        for c in self.chunks:
            if c.finite:
                return c.now[c.finite[0]]
        return math.inf

    def drain(self) -> Iterator[tuple[Job | None, RequestBlock, int, float, float]]:
        """Take every request out, front first, as (its Job or None, block, index, arrival time, deadline)."""
        while self.jobs:
            job = self.jobs.popleft()
            yield job, job.block, job.i, job.arrival_at, job.deadline
        while self.chunks:
            c = self.chunks.popleft()
            self.tail_len -= len(c)
            for k in range(c.pos, len(c.idx)):
                yield None, c.block, c.idx[k], c.now[k], (c.deadline[k] if c.deadline is not None else math.inf)
