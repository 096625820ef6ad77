"""The self-hosted GPU pool: one shared queue, continuous batching on each server, KV admission.

Semantics (CONTRACT.md, "GPU server semantics"): a server with room takes the next waiting request
(least-loaded server first); at every iteration boundary it admits waiting requests (priority, then FCFS)
while the batch is below `max_batch` and the KV reservation (input + output tokens) fits. Iteration k of
a segment in which the batch is unchanged lasts

    d_k = A + B*k + P*[k == 0],  A = base + per_seq*n + per_kv_token*KV0,  B = per_kv_token*n,
    P = per_prefill_token * (prompt tokens of the requests admitted at the segment start),

so the end of iteration m (m >= 1) is at T(m) = P + m*A + B*m*(m-1)/2 after the segment start. A request
admitted at a segment start emits its first token at T(1) and its k-th (last) at T(k) of that segment
(or of later segments, counted in absolute iterations). Nothing happens in between, so the server keeps a
single timer for its next boundary that matters (the next completion, or the next boundary after an
arrival it has claimed) and skips every unchanged iteration. Stale timers are ignored by a version number.

Overload (bounded memory): a request is admitted only after every request ahead of it (same or higher
priority, FCFS) has been admitted, and admitting request j costs its server at least
w_j = base/max_batch + per_seq + per_prefill_token * input_j of iteration time (its share of the iteration
that prefills it). So once the work ahead that can only leave the queue by admission (no deadline before
the horizon) exceeds servers * (time left) plus the slack of one last boundary, a new arrival cannot be
admitted before the horizon. Such a request gets no Job: it is recorded at once as it would end, in flight
at the horizon (or dropped at its deadline if that comes first), and so is every later arrival at its
priority or lower (they are behind it). The queue, and memory, are then bounded by what can still be
served, not by the arrivals. Every way a queued job leaves the queue must go through `_dequeued`.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable

import numpy as np
import simpy

from backends.catalog import iteration_model, kv_capacity
from sim.config.backends import GpuPoolSpec
from sim.request_block import DROPPED, FAILED, PATH_GPU, SERVED, RequestBlock


class Job:
    __slots__ = ("block", "i", "arrival_at", "input", "output", "need", "priority", "deadline", "finish_iter")

    def __init__(
        self, block: RequestBlock, i: int, arrival_at: float, inp: int, out: int, priority: int, deadline: float
    ):
        self.block = block
        self.i = i
        self.arrival_at = arrival_at
        self.input = inp
        self.output = out
        self.need = inp + out
        self.priority = priority
        self.deadline = deadline
        self.finish_iter = 0


class Server:
    __slots__ = (
        "idx",
        "heap",
        "n",
        "kv_reserved",
        "kv_held",
        "iters",
        "seg_start",
        "A",
        "B",
        "P",
        "version",
        "timer_m",
        "claims",
        "claims_kv",
        "busy_since",
        "ready",
        "seq",
    )

    def __init__(self, idx: int):
        self.idx = idx
        self.heap: list[tuple[int, int, Job]] = []
        self.n = 0
        self.kv_reserved = 0
        self.kv_held = 0
        self.iters = 0
        self.seg_start = 0.0
        self.A = self.B = self.P = 0.0
        self.version = 0
        self.timer_m = 0
        self.claims = 0
        self.claims_kv = 0
        self.busy_since = -1.0
        self.ready = False
        self.seq = 0

    def t_of(self, m: int) -> float:
        """Time from the segment start to the end of its m-th iteration."""
        return self.P + m * self.A + self.B * m * (m - 1) * 0.5

    def next_boundary_m(self, dt: float) -> int:
        """Smallest m >= 1 with T(m) >= dt."""
        A, B, x = self.A, self.B, dt - self.P
        if x <= A:
            return 1
        if B <= 0.0:
            m = math.ceil(x / A - 1e-12)
        else:
            # B/2 m^2 + (A - B/2) m - x >= 0
            b = A - 0.5 * B
            m = math.ceil((-b + math.sqrt(b * b + 2.0 * B * x)) / B - 1e-12)
        m = max(m, 1)
        while self.t_of(m) < dt - 1e-12:
            m += 1
        while m > 1 and self.t_of(m - 1) >= dt:
            m -= 1
        return m


class GpuPool:
    """Event-driven on SimPy with plain callbacks (no process per request or per server)."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: GpuPoolSpec,
        priorities: list[int],
        timeouts: list[float | None],
        rng_cold: np.random.Generator,
        horizon_s: float,
        on_done: Callable[[RequestBlock], None],
    ):
        from workloads.distributions import make_distribution

        self.env = env
        self.spec = spec
        it = iteration_model(spec)
        self.base, self.per_seq = it.base, it.per_seq
        self.per_prefill, self.per_kv = it.per_prefill_token, it.per_kv_token
        self.max_batch = spec.max_batch
        self.kv_capacity = kv_capacity(spec)
        self.priorities = priorities
        self.timeouts = timeouts
        self.levels = sorted(set(priorities))
        self.queues: dict[int, deque[Job]] = {p: deque() for p in self.levels}
        self.queued = 0
        self.horizon_s = horizon_s
        # overload bound (see the module docstring); work in integer nanoseconds so sums stay exact
        self.bound_queue = True
        self.sure_work_ns: dict[int, int] = dict.fromkeys(self.levels, 0)
        self.w0 = self.base / spec.max_batch + self.per_seq
        self.max_w_ns = 0
        self.blocked_from = math.inf  # priority level from which arrivals are behind a never-admitted one
        self.never_admitted = 0  # requests recorded as in flight at the horizon without a Job
        self.jobless = 0  # every request recorded without a Job (in flight, or dropped at its deadline)
        self.on_done = on_done
        # routing's fallback hook: called with (block, i, time) for a request that would fail; True = taken over
        self.on_failed: Callable[[RequestBlock, int, float], bool] | None = None
        self.servers = [Server(i) for i in range(spec.servers)]
        self.idle: list[int] = []
        self.busy_intervals: list[tuple[float, float]] = []
        self.healthy_intervals: list[tuple[float, float]] = []
        self.provisioned_intervals: list[tuple[float, float]] = [(0.0, horizon_s)] * spec.servers
        self.num_events = 0
        cold = make_distribution(spec.cold_start_s)
        ready_at = cold.sample(rng_cold, spec.servers) if spec.servers else np.zeros(0)
        for s, r in zip(self.servers, ready_at, strict=True):
            r = float(r)
            if r <= 0.0:
                self._become_ready(s)
            else:
                self._at(r, lambda _e, s=s: self._become_ready(s))

    # -- plumbing ---------------------------------------------------------------------------
    def _at(self, delay: float, fn: Callable[[simpy.Event], None]) -> None:
        ev = simpy.Timeout(self.env, delay)
        ev.callbacks.append(fn)  # type: ignore[union-attr]
        self.num_events += 1

    def _become_ready(self, s: Server) -> None:
        s.ready = True
        now = self.env.now
        self.healthy_intervals.append((now, self.horizon_s))
        heapq.heappush(self.idle, s.idx)
        if self.queued:
            heapq.heappop(self.idle)
            self._admit_from_queue(s, now, [])

    @property
    def queue_len(self) -> int:
        """Requests waiting for a batch (those that can never be admitted included)."""
        return self.queued + self.never_admitted

    @property
    def num_ready(self) -> int:
        return sum(1 for s in self.servers if s.ready)

    # -- arrivals --------------------------------------------------------------------------
    def submit(self, block: RequestBlock, i: int, priority: int, timeout: float | None) -> None:
        now = self.env.now
        block.path[i] = PATH_GPU  # from now on: a request of the GPU pool (queued ones count in queue_len)
        inp = int(block.input_tokens[i])
        out = int(block.output_tokens[i])
        if inp + out > self.kv_capacity or not self.servers:
            self._finish(block, i, FAILED, now)
            return
        deadline = now + timeout if timeout is not None else math.inf
        if self.idle and not self.queued:
            s = self.servers[heapq.heappop(self.idle)]
            self._start_segment(s, now, [Job(block, i, now, inp, out, priority, deadline)])
            return
        if self.bound_queue and (priority >= self.blocked_from or self._hopeless(priority, inp, now)):
            self._never_admitted(block, i, priority, deadline)
            return
        job = Job(block, i, now, inp, out, priority, deadline)
        self.queues[priority].append(job)
        self.queued += 1
        if deadline >= self.horizon_s:
            self.sure_work_ns[priority] += self._work_ns(inp)
        self._claim(job, now)

    def _work_ns(self, inp: int) -> int:
        """Lower bound on the iteration time that admitting a request costs its server (floored)."""
        return int((self.w0 + self.per_prefill * inp) * 1e9)

    def _hopeless(self, priority: int, inp: int, now: float) -> bool:
        """True if a request arriving now at this priority cannot be admitted before the horizon."""
        w_ns = math.ceil((self.w0 + self.per_prefill * inp) * 1e9) + 1
        if w_ns > self.max_w_ns:
            self.max_w_ns = w_ns
        ahead = 0
        for p in self.levels:
            if p > priority:
                break
            ahead += self.sure_work_ns[p]
        # the last boundary before its admission may admit up to servers * max_batch others unfinished
        slack = len(self.servers) * self.max_batch * self.max_w_ns
        capacity = math.ceil(len(self.servers) * (self.horizon_s - now) * 1e9)
        return ahead - slack > capacity

    def _never_admitted(self, block: RequestBlock, i: int, priority: int, deadline: float) -> None:
        """Record a request that cannot be admitted before the horizon as it will end, without a Job."""
        self.jobless += 1
        if deadline < self.horizon_s:
            block.status[i] = DROPPED
            block.done_at[i] = deadline
        else:
            self.never_admitted += 1
            if priority < self.blocked_from:
                self.blocked_from = priority
        block.pending -= 1
        if block.pending == 0:
            self.on_done(block)

    def _dequeued(self, job: Job) -> None:
        """Bookkeeping for every job leaving the queue (admitted or dropped)."""
        self.queued -= 1
        if job.deadline >= self.horizon_s:
            self.sure_work_ns[job.priority] -= self._work_ns(job.input)

    def _claim(self, job: Job, now: float) -> None:
        """Ask the least-loaded busy server with room to stop at its next boundary."""
        best: Server | None = None
        best_load = 0
        for s in self.servers:
            if not s.ready or s.n == 0:
                continue
            load = s.n + s.claims
            if load >= self.max_batch or s.kv_reserved + s.claims_kv + job.need > self.kv_capacity:
                continue
            if best is None or load < best_load:
                best, best_load = s, load
        if best is None:
            return
        best.claims += 1
        best.claims_kv += job.need
        m = best.next_boundary_m(now - best.seg_start)
        if m < best.timer_m:
            self._set_timer(best, m)

    # -- batching --------------------------------------------------------------------------
    def _set_timer(self, s: Server, m: int) -> None:
        s.version += 1
        s.timer_m = m
        v = s.version
        delay = s.seg_start + s.t_of(m) - self.env.now
        self._at(max(delay, 0.0), lambda _e: self._on_boundary(s, v))

    def _start_segment(self, s: Server, now: float, admitted: list[Job]) -> None:
        prefill = 0
        for job in admitted:
            job.finish_iter = s.iters + job.output
            s.seq += 1
            heapq.heappush(s.heap, (job.finish_iter, s.seq, job))
            s.kv_reserved += job.need
            s.kv_held += job.input
            prefill += int(job.block.prefill_tokens[job.i])  # input minus any prefix-cache hit
        s.n = len(s.heap)
        if s.busy_since < 0.0:
            s.busy_since = now
        s.seg_start = now
        s.A = self.base + self.per_seq * s.n + self.per_kv * s.kv_held
        s.B = self.per_kv * s.n
        s.P = self.per_prefill * prefill
        if admitted:
            first = now + s.P + s.A
            for job in admitted:
                b, i = job.block, job.i
                b.start_at[i] = now
                b.first_token_at[i] = first
        self._set_timer(s, s.heap[0][0] - s.iters)

    def _on_boundary(self, s: Server, version: int) -> None:
        if version != s.version or not s.ready:
            return
        now = self.env.now
        m = s.timer_m
        s.iters += m
        s.kv_held += s.n * m
        heap = s.heap
        while heap and heap[0][0] <= s.iters:
            _, _, job = heapq.heappop(heap)
            s.kv_reserved -= job.need
            s.kv_held -= job.need
            self._finish(job.block, job.i, SERVED, now)
        s.n = len(heap)
        s.claims = 0
        s.claims_kv = 0
        self._admit_from_queue(s, now, [])

    def _admit_from_queue(self, s: Server, now: float, admitted: list[Job]) -> None:
        room = self.max_batch - s.n
        kv_free = self.kv_capacity - s.kv_reserved
        if self.queued:
            for p in self.levels:
                q = self.queues[p]
                while q and room > 0:
                    job = q[0]
                    if job.deadline < now:
                        q.popleft()
                        self._dequeued(job)
                        self._finish(job.block, job.i, DROPPED, job.deadline)
                        continue
                    if job.need > kv_free:
                        room = 0  # FCFS: the head waits for memory, nobody overtakes it
                        break
                    q.popleft()
                    self._dequeued(job)
                    admitted.append(job)
                    room -= 1
                    kv_free -= job.need
                if room <= 0:
                    break
        if admitted or s.n:
            self._start_segment(s, now, admitted)
        else:
            if s.busy_since >= 0.0:
                self.busy_intervals.append((s.busy_since, now))
                s.busy_since = -1.0
            s.version += 1
            s.timer_m = 0
            heapq.heappush(self.idle, s.idx)

    def _finish(self, block: RequestBlock, i: int, status: int, at: float) -> None:
        if status == FAILED and self.on_failed is not None and self.on_failed(block, i, at):
            return
        block.status[i] = status
        block.path[i] = PATH_GPU
        block.done_at[i] = at
        block.pending -= 1
        if block.pending == 0:
            self.on_done(block)

    # -- end of horizon ----------------------------------------------------------------------
    def close(self, now: float) -> None:
        """Close open busy periods at the horizon. Requests still running, or queued with no deadline
        before the horizon, stay in flight; a queued request whose deadline passed was dropped then."""
        for s in self.servers:
            if s.busy_since >= 0.0:
                self.busy_intervals.append((s.busy_since, now))
                s.busy_since = -1.0
        for p in self.levels:
            q = self.queues[p]
            keep: deque[Job] = deque()
            while q:
                job = q.popleft()
                if job.deadline < now:
                    self._dequeued(job)
                    self._finish(job.block, job.i, DROPPED, job.deadline)
                else:
                    keep.append(job)
            self.queues[p] = keep
