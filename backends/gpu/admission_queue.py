"""The GPU pool's admission queue: one FCFS queue per priority level, shared by all servers.

Fresh arrivals wait as columns and get their Job at the front (backends.gpu.waiting: bytes a request, not
a Job's ~280, under overload). Every way a request enters or leaves the queue goes through `arrive` /
`requeue` / `dequeued` (arrivals, preemptions and failed servers' requeues included), so the overload
bound (backends.gpu.overload_bound) that it keeps up to date stays a bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from backends.gpu.overload_bound import OverloadBound
from backends.gpu.server import Job
from backends.gpu.waiting import WaitingQueue
from sim.core.request_block import RequestBlock

MIXED, PREFILL, DECODE = "mixed", "prefill", "decode"  # a pool's role (backends.gpu.disaggregation)


def role_tokens(role: str, inp: int, out: int, pre: int) -> tuple[int, int, int]:
    """(input, output, prefill) of a request as a pool of this role serves it: a prefill pool generates the
    first token only; a decode pool receives the prompt's KV (nothing to prefill) and generates the rest."""
    if role == PREFILL:
        return inp, 1, pre
    if role == DECODE:
        return inp, out - 1, 0
    return inp, out, pre


def role_job(role: str, block: RequestBlock, i: int, now: float, priority: int, deadline: float) -> Job:
    """The Job of request i entering a pool of this role at `now`."""
    inp, out, pre = role_tokens(
        role, int(block.input_tokens[i]), int(block.output_tokens[i]), int(block.prefill_tokens[i])
    )
    job = Job(block, i, now, inp, out, priority, deadline, inp - pre)
    if role == DECODE:  # its first token and its start (the prefill's admission) happened on the prefill pool
        job.need_first = False
        job.started = True
    return job


class AdmissionQueue:
    def __init__(
        self,
        levels: list[int],
        timeouts: list[float | None],
        horizon_s: float,
        bound: OverloadBound,
        role: str = MIXED,
    ):
        self.levels = levels  # the priority levels, ascending (0 first)
        self.queues: dict[int, WaitingQueue] = {p: self._new_queue(p) for p in self.levels}
        self.queued = 0
        self.num_deadlines = 0  # queued requests that may still be dropped at a deadline (a finite timeout)
        finite = [t for t in timeouts if t is not None]
        self.min_timeout_s = min(finite) if finite else math.inf
        self.horizon_s = horizon_s
        self.bound = bound
        self.role = role

    def _new_queue(self, priority: int) -> WaitingQueue:
        return WaitingQueue(lambda block, i, now, deadline: self._arrival_job(block, i, now, deadline, priority))

    def _arrival_job(self, block: RequestBlock, i: int, now: float, deadline: float, priority: int) -> Job:
        """The Job of a request that waited as columns, as it would have been built at its arrival."""
        if self.role != MIXED:
            job = role_job(self.role, block, i, now, priority, deadline)
        else:
            inp, out, pre = int(block.input_tokens[i]), int(block.output_tokens[i]), int(block.prefill_tokens[i])
            job = Job(block, i, now, inp, out, priority, deadline, inp - pre)
        if deadline >= self.horizon_s:
            job.work_ns = self.bound.work_ns(job)
        return job

    def arrive(
        self, block: RequestBlock, i: int, now: float, deadline: float, priority: int, tokens: tuple[int, int, int]
    ) -> None:
        """A fresh arrival joins the back of its level; `tokens` = its (input, output, prefill) as read from
        the block. Its Job is built from the block's columns when it reaches the front (the same ints: nothing
        changes them while a request waits); at the front of an empty level it is built now, from `tokens`,
        as `_arrival_job` would build it there (no columns to write and read back for one request)."""
        q = self.queues[priority]
        self._count_in(deadline)
        if not q and self.role == MIXED:
            inp, out, pre = tokens
            job = Job(block, i, now, inp, out, priority, deadline, inp - pre)
            q.jobs.append(job)
            if deadline >= self.horizon_s:  # bound.add(job): a fresh Job's work_ns(job) is work_ns_of(out, inp, pre)
                job.work_ns = w = self.bound.work_ns_of(out, inp, pre)
                self.bound.add_work(priority, w)
            return
        q.append_arrival(block, i, now, deadline)
        if deadline >= self.horizon_s:
            inp, out, pre = tokens
            self.bound.add_work(priority, self.bound.work_ns_of(out, inp, pre))

    def requeue(self, job: Job) -> None:
        """A request put back at the front of its level (preempted, or its server stopped)."""
        self.queues[job.priority].appendleft(job)
        self._count_in(job.deadline)
        if job.deadline >= self.horizon_s:
            self.bound.add(job)

    def _count_in(self, deadline: float) -> None:
        self.queued += 1
        if deadline != math.inf:
            self.num_deadlines += 1

    def dequeued(self, job: Job) -> None:
        """Bookkeeping for every job leaving the queue (admitted or dropped)."""
        self.queued -= 1
        if job.deadline != math.inf:
            self.num_deadlines -= 1
        if job.deadline >= self.horizon_s:
            self.bound.remove(job)

    def drop_expired(self, now: float, dropped: Callable[[RequestBlock, int, float], None]) -> None:
        """Take every request whose deadline passed before `now` out of the queue, calling
        `dropped(block, i, deadline)` on each."""
        for p in self.levels:
            keep = self._new_queue(p)
            for job, block, i, at, deadline in self.queues[p].drain():
                if deadline < now:
                    self.queued -= 1
                    self.num_deadlines -= 1  # no sure work to take back: its deadline is before the horizon
                    dropped(block, i, deadline)
                elif job is not None:
                    keep.jobs.append(job)
                else:
                    keep.append_arrival(block, i, at, deadline)
            self.queues[p] = keep

    def settled_before(self) -> float:
        """No request queued here can end before this time by a drop, which is recorded late (at the next
        admission scan) with its deadline. Fresh arrivals are appended in arrival order and only they have
        finite deadlines, so the first one of each queue bounds them all (the recorder's concurrency sweep)."""
        if not self.num_deadlines:
            return math.inf
        return min(q.first_deadline_arrival_at() for q in self.queues.values()) + self.min_timeout_s

    def oldest_wait(self, now: float) -> float:
        heads = [q.head_arrival_at() for q in self.queues.values() if q]
        return now - min(heads) if heads else 0.0
