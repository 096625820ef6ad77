"""The self-hosted GPU pool: one shared queue, continuous batching on each server, KV memory, failures, scaling.

Semantics (docs/architecture.md, "GPU server semantics"): a server with room takes the next waiting request
(least-loaded server first); at every iteration boundary it admits waiting requests (priority, then FCFS)
while the batch is below `max_batch` and KV memory allows. KV memory is either

* `reserve`: a request reserves input + output tokens at admission and never grows beyond that; or
* `paged` (vLLM): a request holds blocks of `kv_block_tokens` for its input and the tokens generated so far;
  admission needs the prompt's blocks (plus a 1% watermark when the server is busy); when a growing batch
  would not fit into the next iteration, the newest request is preempted: it frees its blocks, goes back
  to the front of the queue and later re-prefills its prompt plus what it had generated (recompute).

Within a segment (unchanged batch) iteration times follow the closed form of backends.gpu_server, so the
server keeps a single timer for its next boundary that matters: the next completion, the iteration at which
the batch would run out of KV (solved in closed form), the end of the current chunk of prefill, or the
next boundary after an arrival it has claimed. Stale timers are ignored by a version number.

Servers are OFF, COLD (provisioned, paid, loading: `cold_start_s`), READY, or DOWN (failed, repairing,
paid). Every start is a cold start: at t = 0, after a repair, on scale-up. Time to failure is exponential
with mean `failures.mtbf_h` while a server is READY; repair takes Exponential(`mttr_h`); requests running
on a failed server go back to the front of the queue to start over (`requeue`) or fail (`fail`).

Overload (bounded memory): a request is admitted only after every request ahead of it (same or higher
priority, FCFS) has been admitted, and, a batch holding at most max_batch requests, after all but at most
servers * max_batch of them have also finished. Finishing request k costs its server at least
w_k = rem_out_k * (base/max_batch + per_seq) + per_prefill_token * (tokens it still has to prefill) of
iteration time: its share of each of the rem_out_k (>= 1) iterations it runs in (an iteration of n <=
max_batch requests takes at least base + per_seq * n) plus its prefill. So once the work ahead that can
only leave the queue by admission (no deadline before the horizon) exceeds servers * (time left) plus the
slack of the last servers * max_batch unfinished ones, a new arrival cannot be admitted before the horizon.
Such a request gets no Job: it is recorded at once as it would end, in flight
at the horizon (or dropped at its deadline if that comes first), and so is every later arrival at its
priority or lower (they are behind it). The queue, and memory, are then bounded by what can still be
served, not by the arrivals. Every way a job enters or leaves the queue goes through `_enqueue` /
`_dequeued` (arrivals, preemptions and failed servers' requeues included), so the bound stays a bound.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable

import numpy as np
import simpy

from backends.gpu.autoscaler import CapacityController
from backends.gpu.catalog import ceil_div, derived_cold_start_s, derived_moe, iteration_model, kv_blocks, kv_capacity
from backends.gpu.server import COLD, DOWN, OFF, READY, Job, Server
from sim.config.backends import GpuPoolSpec
from sim.core.request_block import DROPPED, FAILED, PATH_GPU, SERVED, RequestBlock
from sim.core.ticks import Tick, call_later
from sim.core.timeseries import IntervalTally, minutes_in

KV_WATERMARK = 0.01  # share of KV blocks kept free when admitting into a busy server (vLLM's default)


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
        rng_failures: np.random.Generator | None = None,
        warmup_s: float = 0.0,
    ):
        from sim.config.distributions import ConstantSpec
        from workloads.distributions import make_distribution

        self.env = env
        self.spec = spec
        it = iteration_model(spec)
        self.base, self.per_seq = it.base, it.per_seq
        self.per_prefill, self.per_kv = it.per_prefill_token, it.per_kv_token
        self.moe = derived_moe(spec)  # MoE: + the distinct experts the batch's decode tokens touch, streamed
        self.max_batch = spec.max_batch
        self.paged = spec.kv_policy == "paged"
        self.bs = spec.kv_block_tokens if self.paged else 1
        self.kv_capacity = kv_capacity(spec)
        self.cap_blocks = kv_blocks(spec) if self.paged else self.kv_capacity
        self.watermark = int(KV_WATERMARK * self.cap_blocks) if self.paged else 0
        # largest input + output that fits alone (paged: the last iteration holds input + output - 1 tokens)
        self.max_tokens = self.cap_blocks * self.bs + 1 if self.paged else self.kv_capacity
        self.chunk = spec.max_prefill_tokens
        self.priorities = priorities
        self.timeouts = timeouts
        self.levels = sorted(set(priorities))
        self.queues: dict[int, deque[Job]] = {p: deque() for p in self.levels}
        self.queued = 0
        self.num_deadlines = 0  # queued requests that may still be dropped at a deadline (a finite timeout)
        finite = [t for t in timeouts if t is not None]
        self.min_timeout_s = min(finite) if finite else math.inf
        self.horizon_s = horizon_s
        self.warmup_s = warmup_s
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
        self.rng_cold = rng_cold
        self.rng_fail = rng_failures if rng_failures is not None else np.random.default_rng(0)
        fs = spec.failures
        self.mtbf_s = fs.mtbf_h * 3600.0 if fs.mtbf_h is not None else None
        self.mttr_s = fs.mttr_h * 3600.0
        self.requeue_on_failure = fs.on_failure == "requeue"
        cold_spec = spec.cold_start_s
        if cold_spec is None:
            cold_spec = ConstantSpec(dist="constant", value=derived_cold_start_s(spec))
        self.cold = make_distribution(cold_spec)
        self.controller = CapacityController(env, self, spec, horizon_s)
        size = self.controller.size
        self.servers = [Server(i, self.bs) for i in range(size)]
        self.idle: list[int] = []
        self.ready_count = 0
        self.running_total = 0
        self.seq = 0
        self.busy = IntervalTally(warmup_s, horizon_s)  # busy stretches, folded as they come (bounded memory)
        self.healthy_intervals: list[tuple[float, float]] = []
        self.provisioned_intervals: list[tuple[float, float]] = []
        self.num_events = 0
        self.preemptions = 0
        self.work_s = 0.0  # server-time the work done would take in full batches (after warm-up)
        # the same per simulated minute (a segment counted in the minute it ends): capacity used over the day
        # (an open-ended run, engine_bench's horizon = inf, keeps one bin)
        self.work_by_minute = [0.0] * (minutes_in(horizon_s) if math.isfinite(horizon_s) else 1)
        # tests: called at every segment start with the number of iterations until its timer
        self.audit: Callable[[GpuPool, Server, int], None] | None = None
        self.controller.start()

    # -- plumbing ---------------------------------------------------------------------------
    def schedule(self, delay: float, fn: Callable[[simpy.Event], None]) -> None:
        """Call `fn` after `delay` simulated seconds (a SimPy event: lifecycle and the controller, not hot paths)."""
        ev = simpy.Timeout(self.env, delay)
        ev.callbacks.append(fn)
        self.num_events += 1

    @property
    def queue_len(self) -> int:
        """Requests waiting for a batch (those that can never be admitted included)."""
        return self.queued + self.never_admitted

    @property
    def num_ready(self) -> int:
        """READY servers that take new requests (not draining)."""
        return self.ready_count

    @property
    def in_flight(self) -> int:
        return self.running_total + self.queued + self.never_admitted

    @property
    def provisioned(self) -> int:
        """Servers provisioned and not draining (the count the autoscaler and schedule steer)."""
        return sum(1 for s in self.servers if s.state != OFF and not s.draining)

    def settled_before(self) -> float:
        """No request queued here can end before this time by a drop, which is recorded late (at the next
        admission scan) with its deadline. Fresh arrivals are appended in arrival order and only they have
        finite deadlines, so the first one of each queue bounds them all (sim.recorder's concurrency sweep)."""
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

    # -- server lifecycle --------------------------------------------------------------------
    def provision(self, s: Server) -> None:
        s.prov_since = self.env.now
        self._cold_start(s)

    def _cold_start(self, s: Server) -> None:
        s.state = COLD
        s.life += 1
        life = s.life
        delay = float(self.cold.sample(self.rng_cold, 1)[0])
        if delay <= 0.0:
            self._become_ready(s, life)
        else:
            self.schedule(delay, lambda _e: self._become_ready(s, life))

    def _become_ready(self, s: Server, life: int) -> None:
        if s.life != life or s.state != COLD:
            return
        now = self.env.now
        s.state = READY
        s.life += 1
        s.healthy_since = now
        self.ready_count += 1
        if self.mtbf_s is not None:
            life = s.life
            self.schedule(float(self.rng_fail.exponential(self.mtbf_s)), lambda _e: self._fail(s, life))
        if self.queued:
            self._admit_from_queue(s, now)
        else:
            self._make_idle(s, now)

    def _leave_ready(self, s: Server, now: float) -> None:
        if s.state == READY:
            self.healthy_intervals.append((s.healthy_since, now))
            s.healthy_since = -1.0
            if not s.draining:
                self.ready_count -= 1
        if s.busy_since >= 0.0:
            self.busy.add(s.busy_since, now)
            s.busy_since = -1.0
        s.version += 1  # cancels the batch timer
        s.timer_m = 0

    def deprovision(self, s: Server) -> None:
        now = self.env.now
        self._leave_ready(s, now)
        if s.running:
            self._evict_all(s, now, requeue=True)
        self.provisioned_intervals.append((s.prov_since, now))
        s.prov_since = -1.0
        s.state = OFF
        s.draining = False
        s.life += 1

    def drain(self, s: Server) -> None:
        """Stop admitting; deprovision once the batch has finished."""
        if s.state != READY or s.draining:
            return
        s.draining = True
        self.ready_count -= 1
        if not s.running:
            self.deprovision(s)

    def undrain(self, s: Server) -> None:
        if not s.draining:
            return
        s.draining = False
        self.ready_count += 1
        if self.queued and s.running:  # take waiting requests at the next boundary
            m = s.next_boundary_m(self.env.now - s.seg_start)
            if m < s.timer_m:
                self._set_timer(s, m)

    def resize(self, k: int) -> None:
        """Provision or retire servers until `k` are provisioned (not draining): the autoscaler's one handle.

        Up: take back draining servers (still warm, busiest first), then provision OFF ones (paid from now,
        cold start before serving). Down: remove servers still cold-starting, then under repair, then idle
        ones, then drain the least-loaded busy ones (paid until their batch finishes)."""
        servers = self.servers
        cur = self.provisioned
        if k > cur:
            draining = sorted((s for s in servers if s.draining), key=lambda s: -len(s.running))
            for s in draining[: k - cur]:
                self.undrain(s)
                cur += 1
            for s in servers:
                if cur >= k:
                    break
                if s.state == OFF:
                    self.provision(s)
                    cur += 1
            self._dispatch_idle(self.env.now)
        elif k < cur:
            active = [s for s in servers if s.state != OFF and not s.draining]

            def rank(s: Server) -> tuple[int, int, int]:
                n = len(s.running)
                order = {COLD: 0, DOWN: 1}.get(s.state, 2 if n == 0 else 3)
                return (order, n, -s.idx)

            for s in sorted(active, key=rank)[: cur - k]:
                if s.state == READY and s.running:
                    self.drain(s)
                else:
                    self.deprovision(s)

    def _fail(self, s: Server, life: int) -> None:
        if s.life != life or s.state != READY:
            return
        now = self.env.now
        draining = s.draining
        self._leave_ready(s, now)
        self._evict_all(s, now, requeue=self.requeue_on_failure)
        s.state = DOWN
        s.life += 1
        if draining:
            self.deprovision(s)
            return
        life = s.life
        self.schedule(float(self.rng_fail.exponential(self.mttr_s)), lambda _e: self._repaired(s, life))
        self._dispatch_idle(now)

    def _repaired(self, s: Server, life: int) -> None:
        if s.life != life or s.state != DOWN:
            return
        self._cold_start(s)

    def _evict_all(self, s: Server, now: float, requeue: bool) -> None:
        """Take every request off a server that stops: back to the queue front (oldest first) or failed."""
        jobs = list(s.running.values())
        self.running_total -= len(jobs)
        s.running.clear()
        s.heap.clear()
        s.pref.clear()
        s.pref_left = s.pref_tokens = s.pref_blocks = 0
        s.n_grow = s.sum_a = s.sum_qq = 0
        s.cnt = [0] * s.bs
        s.kv_reserved = 0
        s.claims = s.claims_kv = 0
        for job in reversed(jobs):
            job.seq = -1
            job.F = -1
            b, i = job.block, job.i
            if not requeue:
                self._finish(b, i, FAILED, now)
                continue
            # the client retries: the answer starts over; a first token already streamed stays seen
            job.generated = 0
            job.inp_eff = job.input
            job.rem_out = job.output
            if b.first_token_at[i] > now:
                b.first_token_at[i] = math.nan
                job.need_first = True
            self._enqueue(job, front=True)

    def _make_idle(self, s: Server, now: float) -> None:
        if s.busy_since >= 0.0:
            self.busy.add(s.busy_since, now)
            s.busy_since = -1.0
        s.version += 1
        s.timer_m = 0
        if not s.in_idle:
            s.in_idle = True
            heapq.heappush(self.idle, s.idx)

    def _pop_idle(self) -> Server | None:
        while self.idle:
            s = self.servers[heapq.heappop(self.idle)]
            s.in_idle = False
            if s.state == READY and not s.draining and not s.running:
                return s
        return None

    def _dispatch_idle(self, now: float) -> None:
        while self.queued:
            s = self._pop_idle()
            if s is None:
                return
            self._admit_from_queue(s, now)

    # -- arrivals --------------------------------------------------------------------------
    def submit(
        self,
        block: RequestBlock,
        i: int,
        priority: int,
        timeout: float | None,
        tokens: tuple[int, int, int] | None = None,
    ) -> None:
        """A request arrives now; `tokens` = (input, output, prefill) when the caller already has them as ints
        (the router's pump reads them for a whole block at once), else they are read from the block."""
        now = self.env.now
        block.path[i] = PATH_GPU  # from now on: a request of the GPU pool (queued ones count in queue_len)
        if tokens is None:
            inp, out, pre = int(block.input_tokens[i]), int(block.output_tokens[i]), int(block.prefill_tokens[i])
        else:
            inp, out, pre = tokens
        if inp + out > self.max_tokens or not self.servers:
            self._finish(block, i, FAILED, now)
            return
        deadline = now + timeout if timeout is not None else math.inf
        if not self.queued and self.idle:
            s = self._pop_idle()
            if s is not None:
                self._start_segment(s, now, [Job(block, i, now, inp, out, priority, deadline, inp - pre)])
                return
        if self.bound_queue and (priority >= self.blocked_from or self._hopeless(priority, now)):
            self._never_admitted(block, i, priority, deadline)
            return
        job = Job(block, i, now, inp, out, priority, deadline, inp - pre)
        self._enqueue(job)
        self._claim(job)

    def _enqueue(self, job: Job, front: bool = False) -> None:
        if front:
            self.queues[job.priority].appendleft(job)
        else:
            self.queues[job.priority].append(job)
        self.queued += 1
        if job.deadline != math.inf:
            self.num_deadlines += 1
        if job.deadline >= self.horizon_s:
            job.work_ns = w = self._work_ns(job)  # again after a preemption: what is left to do
            if w + 1 > self.max_w_ns:
                self.max_w_ns = w + 1
            self.sure_work_ns[job.priority] += w

    def _dequeued(self, job: Job) -> None:
        """Bookkeeping for every job leaving the queue (admitted or dropped)."""
        self.queued -= 1
        if job.deadline != math.inf:
            self.num_deadlines -= 1
        if job.deadline >= self.horizon_s:
            self.sure_work_ns[job.priority] -= job.work_ns

    def _work_ns(self, job: Job) -> int:
        """Lower bound on the iteration time that finishing a queued request costs its server (floored)."""
        prefill = job.inp_eff - job.cached
        return int((self.w0 * max(job.rem_out, 1) + self.per_prefill * (prefill if prefill > 0 else 0)) * 1e9)

    def _hopeless(self, priority: int, now: float) -> bool:
        """True if a request arriving now at this priority cannot be admitted before the horizon."""
        if self.horizon_s == math.inf:  # open-ended runs (engine benchmarks): every request is admitted
            return False
        ahead = 0
        for p in self.levels:
            if p > priority:
                break
            ahead += self.sure_work_ns[p]
        # up to servers * max_batch of those ahead may still be running when it is admitted
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

    def _claim(self, job: Job) -> None:
        """Ask the least-loaded busy server with room to stop at its next boundary."""
        best: Server | None = None
        best_load = 0
        paged = self.paged
        need = job.input if paged else job.input + job.output
        room = self.kv_capacity - need
        max_batch = self.max_batch
        for s in self.servers:
            if s.state != READY or s.draining or not s.running:
                continue
            load = len(s.running) + s.claims
            if load >= max_batch or (best is not None and load >= best_load):
                continue
            used = s.sum_a + s.n_grow * (s.iters + 1) + s.pref_tokens if paged else s.kv_reserved
            if used + s.claims_kv > room:
                continue
            best, best_load = s, load
        if best is None:
            return
        best.claims += 1
        best.claims_kv += need
        m = best.next_boundary_m(self.env.now - best.seg_start)
        if m < best.timer_m:
            self._set_timer(best, m)

    # -- batching --------------------------------------------------------------------------
    def _set_timer(self, s: Server, m: int) -> None:
        s.version = v = s.version + 1
        s.timer_m = m
        env = self.env
        # s.t_of(m), inlined: this runs once or twice per request
        c, P = m * s.C, s.P
        delay = s.seg_start + ((c if c < P else P) + m * s.A + s.B * m * (m - 1) * 0.5) - env.now
        call_later(env, delay if delay > 0.0 else 0.0, self._on_boundary, (s, v))
        self.num_events += 1

    def _start_segment(self, s: Server, now: float, admitted: list[Job]) -> None:
        i0 = s.iters
        chunked = self.chunk is not None
        paged = self.paged
        heap = s.heap
        if admitted:
            prefill = 0
            running = s.running
            seq = self.seq
            bs = self.bs
            for job in admitted:
                seq += 1
                job.seq = seq
                job.deadline = math.inf  # admitted: no longer a waiting client that may give up
                running[seq] = job
                cached = job.cached  # a prefix-cache hit is not prefilled again; its KV is still held
                if chunked:
                    job.F = -1
                    job.pref_left = max(job.inp_eff - cached, 1)
                    s.pref.append(job)
                    s.pref_left += job.pref_left
                    s.pref_tokens += job.inp_eff
                    if paged:
                        s.pref_blocks += -(-job.inp_eff // bs)
                    else:
                        s.kv_reserved += job.input + job.output
                else:
                    job.F = f = i0 + 1
                    job.a = a = job.inp_eff - f
                    s.n_grow += 1
                    s.sum_a += a
                    if bs > 1:
                        qq, r = divmod(a + bs - 1, bs)
                        s.sum_qq += qq
                        s.cnt[r] += 1
                    else:
                        s.sum_qq += a
                    heapq.heappush(heap, (i0 + job.rem_out, seq, job))
                    prefill += job.inp_eff - cached
                    if not paged:
                        s.kv_reserved += job.input + job.output
            self.seq = seq
            self.running_total += len(admitted)
            if s.busy_since < 0.0:
                s.busy_since = now
        else:
            prefill = 0
        s.seg_start = now
        per_kv = self.per_kv
        n_grow = s.n_grow
        A = s.A = self.base + self.per_seq * len(s.running) + per_kv * (s.sum_a + n_grow * (i0 + 1) + s.pref_tokens)
        if self.moe is not None:
            A = s.A = A + self.moe.seconds(len(s.running))
        s.B = per_kv * n_grow
        if chunked:
            P = s.P = self.per_prefill * s.pref_left
            C = s.C = self.per_prefill * self.chunk  # type: ignore[operator]
            if admitted:
                first = now + (C if C < P else P) + A
        else:
            P = s.P = self.per_prefill * prefill
            if admitted:
                first = now + P + A
        if admitted:
            for job in admitted:
                if not job.started:
                    job.started = True
                    job.block.start_at[job.i] = now
                if job.need_first and not chunked:
                    job.need_first = False
                    job.block.first_token_at[job.i] = first
        while heap and heap[0][2].seq != heap[0][1]:
            heapq.heappop(heap)
        m = heap[0][0] - i0 if heap else 1 << 60
        if chunked and s.pref:
            m = min(m, ceil_div(s.pref[0].pref_left, self.chunk))  # type: ignore[arg-type]
        if paged and m > 1:
            cap = self.cap_blocks
            if s.sum_qq + s.n_grow * ((i0 + m) // s.bs + 1) + s.pref_blocks > cap:  # may run out: solve
                m = s.overflow_m(m, cap)
        if self.audit is not None:
            self.audit(self, s, m)
        self._set_timer(s, m)

    def _on_boundary(self, tick: Tick) -> None:
        s, version = tick.data
        if version != s.version or s.state != READY:
            return
        now = self.env.now
        m = s.timer_m
        if now >= self.warmup_s:
            full = len(s.running) / self.max_batch
            work = (now - s.seg_start) - (m * self.base * (1.0 - full) if full < 1.0 else 0.0)
            self.work_s += work
            minutes = self.work_by_minute
            minutes[min(int(now / 60.0), len(minutes) - 1)] += work
        it = s.iters = s.iters + m
        if s.pref:
            self._advance_prefill(s, m, it, now)
        heap = s.heap
        paged = self.paged
        bs = s.bs
        if heap and heap[0][0] <= it:
            running = s.running
            while heap and heap[0][0] <= it:
                _, seq, job = heapq.heappop(heap)
                if job.seq != seq:
                    continue
                del running[seq]
                self.running_total -= 1
                s.n_grow -= 1
                a = job.a
                s.sum_a -= a
                if bs > 1:
                    qq, r = divmod(a + bs - 1, bs)
                    s.sum_qq -= qq
                    s.cnt[r] -= 1
                else:
                    s.sum_qq -= a
                if not paged:
                    s.kv_reserved -= job.input + job.output
                job.seq = -1
                self._finish(job.block, job.i, SERVED, now)
        s.claims = 0
        s.claims_kv = 0
        if paged and s.n_grow and s.sum_qq + s.n_grow * ((it + 1) // bs + 1) + s.pref_blocks > self.cap_blocks:
            self._preempt_to_fit(s, it)
        self._admit_from_queue(s, now)
        if self.queued and self.idle:  # preempted requests: an idle server may take them now
            self._dispatch_idle(now)

    def _advance_prefill(self, s: Server, m: int, it: int, now: float) -> None:
        done = min(m * self.chunk, s.pref_left)  # type: ignore[operator]
        s.pref_left -= done
        pref = s.pref
        while pref and done > 0:
            job = pref[0]
            take = min(job.pref_left, done)
            job.pref_left -= take
            done -= take
            if job.pref_left:
                break
            pref.popleft()
            s.pref_tokens -= job.inp_eff
            if self.paged:
                s.pref_blocks -= ceil_div(job.inp_eff, self.bs)
            job.F = it
            job.a = job.inp_eff - it
            s.add_grow(job)
            heapq.heappush(s.heap, (it + job.rem_out - 1, job.seq, job))
            if job.need_first:
                job.need_first = False
                job.block.first_token_at[job.i] = now

    def _preempt_to_fit(self, s: Server, it: int) -> None:
        """Preempt the newest requests until the next iteration's KV fits (recompute later)."""
        while s.running and s.blocks_at(it + 1) > self.cap_blocks:
            seq, job = s.running.popitem()
            self.running_total -= 1
            if job.F >= 0:
                s.remove_grow(job)
                job.generated += it - job.F + 1
            else:
                s.pref.remove(job)
                s.pref_left -= job.pref_left
                s.pref_tokens -= job.inp_eff
                s.pref_blocks -= ceil_div(job.inp_eff, self.bs)
            job.seq = -1
            job.F = -1
            job.inp_eff = job.input + job.generated
            job.rem_out = job.output - job.generated
            self._enqueue(job, front=True)
            if self.env.now >= self.warmup_s:
                self.preemptions += 1

    def _admit_from_queue(self, s: Server, now: float) -> None:
        if s.draining:
            if s.running:
                self._start_segment(s, now, [])
            else:
                self.deprovision(s)
            return
        admitted: list[Job] = []
        if self.queued:
            room = self.max_batch - len(s.running)
            paged = self.paged
            if paged:
                kv_free = self.cap_blocks - s.blocks_at(s.iters + 1) - (self.watermark if s.running else 0)
            else:
                kv_free = self.kv_capacity - s.kv_reserved
            bs = self.bs
            for p in self.levels:
                q = self.queues[p]
                while q and room > 0:
                    job = q[0]
                    if job.deadline < now:
                        q.popleft()
                        self._dequeued(job)
                        self._finish(job.block, job.i, DROPPED, job.deadline)
                        continue
                    need = -(-job.inp_eff // bs) if paged else job.input + job.output
                    if need > kv_free:
                        room = 0  # FCFS: the head waits for memory, nobody overtakes it
                        break
                    q.popleft()
                    self._dequeued(job)
                    admitted.append(job)
                    room -= 1
                    kv_free -= need
                if room <= 0:
                    break
        if admitted or s.running:
            self._start_segment(s, now, admitted)
        else:
            self._make_idle(s, now)

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
        """Close open intervals at the horizon (requests still queued or running stay in flight)."""
        for s in self.servers:
            if s.busy_since >= 0.0:
                self.busy.add(s.busy_since, now)
                s.busy_since = -1.0
            if s.healthy_since >= 0.0:
                self.healthy_intervals.append((s.healthy_since, now))
                s.healthy_since = -1.0
            if s.prov_since >= 0.0:
                self.provisioned_intervals.append((s.prov_since, now))
                s.prov_since = -1.0
        # a queued request whose deadline passed before the horizon was dropped then, not in flight
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
