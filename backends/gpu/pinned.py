"""Requests pinned to a server by backends.gpu.server_routing: taken at its next boundary, ahead of the shared
queue, or handed back to the queue's front when the server stops or drains (backends.gpu.batching calls these)."""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

from backends.gpu.admission_queue import AdmissionQueue
from backends.gpu.server import Job, Server
from backends.gpu.speculative import Speculation
from sim.core.request_block import DROPPED, RequestBlock


class Engine(Protocol):
    """What pinning needs of backends.gpu.batching.BatchEngine (which imports this module)."""

    paged: bool
    bs: int
    steps: int
    spec_dec: Speculation | None
    num_pinned: int
    pinned: list[deque[Job]] | None
    queue: AdmissionQueue

    def finish(self, block: RequestBlock, i: int, status: int, at: float) -> None: ...


def take_pinned(
    engine: Engine, pinned: deque[Job], admitted: list[Job], room: int, kv_free: int, left: int, now: float
) -> tuple[int, int, int]:
    """Admit the requests pinned to a server (FCFS) while they fit: what room, KV and (v1) budget is left."""
    paged, bs = engine.paged, engine.bs
    while pinned and room > 0:
        job = pinned[0]
        if job.deadline < now:
            pinned.popleft()
            engine.num_pinned -= 1
            engine.finish(job.block, job.i, DROPPED, job.deadline)
            continue
        if left <= 0:
            return 0, kv_free, left  # v1: the running requests take the whole budget
        need = -(-job.inp_eff // bs) if paged else job.input + job.output
        if engine.spec_dec is not None and paged:  # it holds speculation's tokens ahead from admission
            need = engine.spec_dec.admission_blocks(job, bs)
        if need > kv_free:
            return 0, kv_free, left  # nobody overtakes it on this server
        if engine.steps > 1 and admitted and job.inp_eff - job.cached > left:
            return 0, kv_free, left  # multi-step: the prefill step's prompt tokens are spent
        pinned.popleft()
        engine.num_pinned -= 1
        admitted.append(job)
        room -= 1
        kv_free -= need
        left -= max(job.inp_eff - job.cached, 1)
    return room, kv_free, left


def unpin(engine: Engine, s: Server) -> None:
    """A server that stops or drains hands its pinned requests to the front of the shared queue."""
    assert engine.pinned is not None
    pinned = engine.pinned[s.idx]
    while pinned:
        engine.num_pinned -= 1
        job = pinned.pop()  # the newest first: the oldest ends at the front
        job.deadline = math.inf  # handed back: it waits on without a deadline (as a requeued request)
        engine.queue.requeue(job)
