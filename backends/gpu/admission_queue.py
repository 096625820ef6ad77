"""The GPU pool's admission queue: one FCFS deque per priority level, shared by all servers.

Every way a job enters or leaves the queue goes through `push` / `dequeued` (arrivals, preemptions and
failed servers' requeues included), so the overload bound (backends.gpu.overload_bound) that it keeps up
to date stays a bound.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from backends.gpu.overload_bound import OverloadBound
from backends.gpu.server import Job


class AdmissionQueue:
    def __init__(self, levels: list[int], timeouts: list[float | None], horizon_s: float, bound: OverloadBound):
        self.levels = levels  # the priority levels, ascending (0 first)
        self.queues: dict[int, deque[Job]] = {p: deque() for p in self.levels}
        self.queued = 0
        self.num_deadlines = 0  # queued requests that may still be dropped at a deadline (a finite timeout)
        finite = [t for t in timeouts if t is not None]
        self.min_timeout_s = min(finite) if finite else math.inf
        self.horizon_s = horizon_s
        self.bound = bound

    def push(self, job: Job, front: bool = False) -> None:
        if front:
            self.queues[job.priority].appendleft(job)
        else:
            self.queues[job.priority].append(job)
        self.queued += 1
        if job.deadline != math.inf:
            self.num_deadlines += 1
        if job.deadline >= self.horizon_s:
            self.bound.add(job)

    def dequeued(self, job: Job) -> None:
        """Bookkeeping for every job leaving the queue (admitted or dropped)."""
        self.queued -= 1
        if job.deadline != math.inf:
            self.num_deadlines -= 1
        if job.deadline >= self.horizon_s:
            self.bound.remove(job)

    def drop_expired(self, now: float, dropped: Callable[[Job], None]) -> None:
        """Take every job whose deadline passed before `now` out of the queue, calling `dropped` on each."""
        for p in self.levels:
            q = self.queues[p]
            keep: deque[Job] = deque()
            while q:
                job = q.popleft()
                if job.deadline < now:
                    self.dequeued(job)
                    dropped(job)
                else:
                    keep.append(job)
            self.queues[p] = keep

    def settled_before(self) -> float:
        """No request queued here can end before this time by a drop, which is recorded late (at the next
        admission scan) with its deadline. Fresh arrivals are appended in arrival order and only they have
        finite deadlines, so the first one of each queue bounds them all (the recorder's concurrency sweep)."""
        if not self.num_deadlines:
            return math.inf
        first = math.inf
        for q in self.queues.values():
            for job in q:
                if job.deadline != math.inf:
                    first = min(first, job.arrival_at)
                    break
        return first + self.min_timeout_s

    def oldest_wait(self, now: float) -> float:
        heads = [q[0].arrival_at for q in self.queues.values() if q]
        return now - min(heads) if heads else 0.0
