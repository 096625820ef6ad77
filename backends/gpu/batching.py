"""The GPU pool's batching engine: continuous batching on each server, KV memory, one timer per batch.

Semantics (docs/architecture.md, "GPU server semantics"): a server with room takes the next waiting request
(least-loaded server first); at every iteration boundary it admits waiting requests (priority, then FCFS)
while the batch is below `max_batch` and KV memory allows; a request that arrives at the boundary's very
instant is waiting then (boundary timers fire after the other events of their time: ticks.LATE). KV memory
is either

* `reserve`: a request reserves input + output tokens at admission and never grows beyond that; or
* `paged` (vLLM): a request holds blocks of `kv_block_tokens` for its input and the tokens generated so far;
  admission needs the prompt's blocks (plus a 1% watermark when the server is busy); when a growing batch
  would not fit into the next iteration, the newest request is preempted: it frees its blocks, goes back
  to the front of the queue and later re-prefills its prompt plus what it had generated (recompute).

Within a segment (unchanged batch) iteration times follow the closed form of backends.gpu.server, so the
server keeps a single timer for its next boundary that matters: the next completion, the iteration at which
the batch would run out of KV (solved in closed form), the end of the current chunk of prefill, or the
next boundary after an arrival it has claimed. Stale timers are ignored by a version number.

Idle READY servers wait in a heap by index (the lowest takes the next request).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable

import simpy

from backends.gpu.admission_queue import AdmissionQueue
from backends.gpu.catalog import (
    ceil_div,
    derived_moe,
    iteration_model,
    kv_blocks,
    kv_capacity,
    prefill_prompt_s,
    prefill_token_budget,
)
from backends.gpu.ledger import PoolLedger
from backends.gpu.multistep import start_round
from backends.gpu.pinned import take_pinned, unpin
from backends.gpu.server import READY, Job, Server
from backends.gpu.speculative import speculation
from backends.gpu.token_budget import start_segment as start_segment_v1
from sim.config.backends import GpuPoolSpec
from sim.core.request_block import DROPPED, FAILED, PATH_GPU, SERVED, RequestBlock
from sim.core.ticks import LATE, Tick, call_later, move_earlier

NO_BUDGET = 1 << 62  # v0: no token budget
KV_WATERMARK = 0.01  # share of KV blocks kept free when admitting into a busy server (vLLM's default)


class BatchEngine:
    """Event-driven on SimPy with plain callbacks (no process per request or per server)."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: GpuPoolSpec,
        num_servers: int,
        queue: AdmissionQueue,
        ledger: PoolLedger,
        on_done: Callable[[RequestBlock], None],
    ):
        self.env = env
        it = iteration_model(spec)
        self.base, self.per_seq = it.base, it.per_seq
        self.per_prefill, self.per_kv = it.per_prefill_token, it.per_kv_token
        self.spec_dec = sd = speculation(spec, it.per_prefill_token)  # speculative decoding (None: off)
        self.per_prefill += sd.draft_prefill_s if sd is not None else 0.0  # the draft prefills every prompt too
        self.decode_tokens = 1 if sd is None else sd.k + 1  # v1: budget tokens a decoding request takes
        self.moe = derived_moe(spec)  # MoE: + the distinct experts the batch's decode tokens touch, streamed
        self.max_batch = spec.max_batch
        self.paged = spec.kv_policy == "paged"
        self.bs = spec.kv_block_tokens if self.paged else 1
        self.kv_capacity = kv_capacity(spec)
        self.cap_blocks = kv_blocks(spec) if self.paged else self.kv_capacity
        self.watermark = int(KV_WATERMARK * self.cap_blocks) if self.paged else 0
        # largest input + output that fits alone (paged: the last iteration holds input + output - 1 tokens)
        self.max_tokens = self.cap_blocks * self.bs + 1 if self.paged else self.kv_capacity
        self.chunk = prefill_token_budget(spec)
        self.chunk_s = self.per_prefill * self.chunk if self.chunk is not None else math.inf  # v0: a chunk's seconds
        # scheduler v1 (backends/gpu/token_budget.py) with a budget; without one it is v0 without chunking
        self.steps = spec.num_scheduler_steps  # > 1: multi-step scheduling (backends/gpu/multistep.py)
        self.schedule_s = min(it.per_schedule, it.base)  # multi-step: paid once a round of decode steps
        self.prefill_prompt_s = prefill_prompt_s(spec)  # multi-step: each prompt's extra cost in a prefill step
        if self.steps > 1 and (spec.scheduler == "v1" or spec.speculative is not None):
            raise ValueError("multi-step scheduling is vLLM v0's, without speculation (capsim validate says so)")
        budget = self.chunk if spec.scheduler == "v1" or self.steps > 1 else None
        self.v1 = budget is not None and self.steps == 1
        self.budget = budget if budget is not None else NO_BUDGET  # per iteration (v1); multi-step: a prefill step
        if self.v1 and self.budget < self.max_batch * self.decode_tokens:
            raise ValueError("scheduler v1 needs max_prefill_tokens >= max_batch (x (k + 1) speculating; validate)")
        self.servers = [Server(i, self.bs) for i in range(num_servers)]
        self.queue = queue
        self.ledger = ledger
        self.on_done = on_done
        # routing's fallback hook: called with (block, i, time) for a request that would fail; True = taken over
        self.on_failed: Callable[[RequestBlock, int, float], bool] | None = None
        # routing's cascade hook: called with (block, i, time) for a request just served; True = taken over
        self.on_served: Callable[[RequestBlock, int, float], bool] | None = None
        # a draining server whose batch has finished: the lifecycle deprovisions it
        self.on_drained: Callable[[Server], None] = lambda s: None
        self.idle: list[int] = []  # indices of idle READY servers (a heap; stale entries skipped)
        self.running_total = 0
        self.seq = 0  # admission number of the last admitted request
        # backends.gpu.server_routing: requests pinned to each server (taken at its next boundary, ahead of the
        # shared queue; None: nothing is ever pinned) and the prefix-cache lookup of an admission from the queue
        self.pinned: list[deque[Job]] | None = None
        self.num_pinned = 0
        self.prefix_lookup: Callable[[Server, Job], None] | None = None

    # -- idle servers ------------------------------------------------------------------------
    def make_idle(self, s: Server, now: float) -> None:
        self.ledger.end_busy(s, now)
        s.version += 1
        s.timer_m = 0
        if not s.in_idle:
            s.in_idle = True
            heapq.heappush(self.idle, s.idx)

    def pop_idle(self) -> Server | None:
        while self.idle:
            s = self.servers[heapq.heappop(self.idle)]
            s.in_idle = False
            if s.state == READY and not s.draining and not s.running:
                return s
        return None

    def dispatch_idle(self, now: float) -> None:
        while self.queue.queued:
            s = self.pop_idle()
            if s is None:
                return
            self.admit(s, now)

    # -- claims and timers -------------------------------------------------------------------
    def claim(self, need: int) -> None:
        """Ask the least-loaded busy server with room for a request needing `need` KV tokens (its prompt,
        paged; prompt + output, reserve) to stop at its next boundary."""
        best: Server | None = None
        best_load = 0
        paged = self.paged
        room = self.kv_capacity - need
        max_batch = self.max_batch
        for s in self.servers:
            if s.state != READY or s.draining or not s.running:
                continue
            load = len(s.running) + s.claims
            if load >= max_batch or (best is not None and load >= best_load):
                continue
            if s.pref and self.v1:  # v1: its budget is spent until its segment ends (it admits there)
                continue
            used = s.tokens_at(s.iters + 1) if paged else s.kv_reserved
            if used + s.claims_kv > room:
                continue
            best, best_load = s, load
        if best is None:
            return
        best.claims += 1
        best.claims_kv += need
        self.wake(best)

    def wake(self, s: Server) -> None:
        """Stop the running batch at its next iteration boundary (to admit from the queue there)."""
        if self.steps > 1 or s.timer_m <= 1:
            return  # multi-step: the scheduler runs at the end of the round only; m >= 1 is never earlier
        m = s.next_boundary_m(self.env.now - s.seg_start)
        if m < s.timer_m:
            self.set_timer(s, m, True)

    def set_timer(self, s: Server, m: int, earlier: bool = False) -> None:
        """The server's next boundary that matters is the end of its segment's m-th iteration. `earlier`:
        it replaces the pending timer on SimPy's heap (a claim), which would only have fired to be ignored."""
        s.version = v = s.version + 1
        s.timer_m = m
        env = self.env
        # s.t_of(m), inlined: 3.1% of a 4 h default.yaml run (in-process medians of 6 interleaved rounds)
        c, prefill_s = m * s.chunk_s, s.prefill_s
        t_m = (c if c < prefill_s else prefill_s) + m * s.iteration_s + s.growth_s * m * (m - 1) * 0.5
        now = env._now
        delay = s.seg_start + t_m - now
        delay = delay if delay > 0.0 else 0.0
        if earlier and s.timer is not None:
            entry = move_earlier(env, s.timer, delay, self.on_boundary, (s, v), LATE)
            if entry is not None:
                s.timer = entry
                return
        s.timer = call_later(env, delay, self.on_boundary, (s, v), LATE)
        self.ledger.num_events += 1

    # -- segments ----------------------------------------------------------------------------
    def start_segment(self, s: Server, now: float, admitted: list[Job]) -> None:
        if self.v1:
            start_segment_v1(self, s, now, admitted)
            return
        if self.steps > 1:
            start_round(self, s, now, admitted)
            return
        # Server.add_grow, tokens_at and the may_outgrow guard of overflow_m are inlined here: 3.0% of a 4 h
        # default.yaml run (in-process medians of 6 interleaved rounds; inlining them in on_boundary and claim
        # showed no gain, so those call the helpers)
        i0 = s.iters
        chunked = self.chunk is not None
        paged = self.paged
        heap = s.heap
        prefill = 0
        spec_dec = self.spec_dec
        if admitted:
            running = s.running
            seq = self.seq
            bs = self.bs
            for job in admitted:
                seq += 1
                job.seq = seq
                job.deadline = math.inf  # admitted: no longer a waiting client that may give up
                running[seq] = job
                cached = job.cached  # a prefix-cache hit is not prefilled again; its KV is still held
                if spec_dec is not None:
                    job.kv_ahead = spec_dec.held_ahead(job.rem_out - 1)
                if chunked:
                    job.prefill_iter = -1
                    job.pref_left = max(job.inp_eff - cached, 1)
                    s.pref.append(job)
                    s.pref_left += job.pref_left
                    held = job.inp_eff + job.kv_ahead
                    s.pref_tokens += held
                    if paged:
                        s.pref_blocks += -(-held // bs)
                    else:
                        s.kv_reserved += job.input + job.output
                else:
                    job.prefill_iter = f = i0 + 1
                    job.kv_base = a = job.inp_eff + job.kv_ahead - f
                    s.n_grow += 1
                    s.sum_kv_base += a
                    if bs > 1:
                        qq, r = divmod(a + bs - 1, bs)
                        s.sum_qq += qq
                        s.cnt[r] += 1
                    else:
                        s.sum_qq += a
                    heapq.heappush(heap, (i0 + job.rem_out if spec_dec is None else spec_dec.end(job, f), seq, job))
                    prefill += job.inp_eff - cached
                    if not paged:
                        s.kv_reserved += job.input + job.output
            self.seq = seq
            self.running_total += len(admitted)
            if s.busy_since < 0.0:
                s.busy_since = now
        s.seg_start = now
        n_grow = s.n_grow
        tokens = s.sum_kv_base + n_grow * (i0 + 1) + s.pref_tokens
        iteration_s = self.base + self.per_seq * len(s.running) + self.per_kv * tokens
        if self.moe is not None:
            iteration_s = iteration_s + self.moe.seconds(len(s.running))
        s.iteration_s = iteration_s
        s.growth_s = self.per_kv * n_grow
        if chunked:  # (its first tokens come at prefill boundaries: advance_prefill)
            s.prefill_s, s.chunk_s = self.per_prefill * s.pref_left, self.chunk_s
        else:
            prefill_s = s.prefill_s = self.per_prefill * prefill
            first = now + prefill_s + iteration_s
        if spec_dec is not None:
            spec_dec.add_cost(s, i0, [] if chunked else admitted)
            first = now + s.prefill_s + s.iteration_s  # (not chunked: the first token's iteration)
        for job in admitted:
            job.admitted(now)
            if not chunked:
                job.first_token(first)
        while heap and heap[0][2].seq != heap[0][1]:
            heapq.heappop(heap)
        m = heap[0][0] - i0 if heap else 1 << 60
        if chunked and s.pref:
            m = min(m, -(-s.pref[0].pref_left // self.chunk))  # type: ignore[operator]
        if paged and m > 1 and s.sum_qq + n_grow * ((i0 + m) // s.bs + 1) + s.pref_blocks > self.cap_blocks:
            m = s.overflow_m(m, self.cap_blocks)  # may run out of KV within the segment: solve
        self.set_timer(s, m)

    def on_boundary(self, tick: Tick) -> None:
        s, version = tick.data
        if version != s.version or s.state != READY:
            return
        now = self.env._now
        m = s.timer_m
        full = len(s.running) / self.max_batch
        self.ledger.add_work(now, (now - s.seg_start) - (m * self.base * (1.0 - full) if full < 1.0 else 0.0))
        if s.prefill_step:  # multi-step: a prefill-only step moves no decode on (backends/gpu/multistep.py)
            s.prefill_step = False
            m = 0
        it = s.iters = s.iters + m
        if s.pref:
            self.advance_prefill(s, m, it, now)
        heap = s.heap
        paged = self.paged
        if heap and heap[0][0] <= it:
            running = s.running
            while heap and heap[0][0] <= it:
                _, seq, job = heapq.heappop(heap)
                if job.seq != seq:
                    continue
                del running[seq]
                self.running_total -= 1
                s.remove_grow(job)
                if not paged:
                    s.kv_reserved -= job.input + job.output
                job.seq = -1
                self.finish(job.block, job.i, SERVED, now)
        s.claims = 0
        s.claims_kv = 0
        if paged and s.n_grow and self.steps == 1 and s.may_outgrow(it + 1, self.cap_blocks):
            self.preempt_to_fit(s, it)  # multi-step: before a decode round, N steps ahead
        self.admit(s, now)
        if self.queue.queued and self.idle:  # preempted requests: an idle server may take them now
            self.dispatch_idle(now)

    def advance_prefill(self, s: Server, m: int, it: int, now: float) -> None:
        done = min(m * (s.chunk_tokens if self.v1 else self.chunk), s.pref_left)  # type: ignore[operator]
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
            held = job.inp_eff + job.kv_ahead
            s.pref_tokens -= held
            if self.paged:
                s.pref_blocks -= ceil_div(held, self.bs)
            job.prefill_iter = it
            job.kv_base = held - it
            s.add_grow(job)
            sd = self.spec_dec
            heapq.heappush(s.heap, (it + job.rem_out - 1 if sd is None else sd.end(job, it), job.seq, job))
            job.first_token(now)

    def preempt_to_fit(self, s: Server, it: int, ahead: int = 1, keep: int = 0) -> None:
        """Preempt the newest requests (recompute later) until the KV of iteration it + ahead fits, keeping
        at least `keep` of them."""
        while len(s.running) > keep and s.blocks_at(it + ahead) > self.cap_blocks:
            seq, job = s.running.popitem()
            self.running_total -= 1
            if job.prefill_iter >= 0:
                s.remove_grow(job)
                runs = it - job.prefill_iter + 1  # iterations of this run (the first emitted one token)
                job.generated += runs if self.spec_dec is None else self.spec_dec.generated(runs, job.rem_out)
            else:
                s.pref.remove(job)
                s.pref_left -= job.pref_left
                held = job.inp_eff + job.kv_ahead
                s.pref_tokens -= held
                s.pref_blocks -= ceil_div(held, self.bs)
            job.seq = -1
            job.prefill_iter = -1
            job.inp_eff = job.input + job.generated
            job.rem_out = job.output - job.generated
            self.queue.requeue(job)
            self.ledger.count_preemption(self.env.now)

    def admit(self, s: Server, now: float) -> None:
        """At a boundary of `s` (or when it becomes free): admit from the queue and start the next segment."""
        if s.draining:
            if self.pinned is not None and self.pinned[s.idx]:
                unpin(self, s)
            if s.running:
                self.start_segment(s, now, [])
            else:
                self.on_drained(s)
            return
        queue = self.queue
        if not queue.queued and self.pinned is None:  # nothing to admit (most boundaries): skip the budgets
            if s.running:
                self.start_segment(s, now, [])
            else:
                self.make_idle(s, now)
            return
        admitted: list[Job] = []
        # v1: the next iteration's tokens left; multi-step: the prefill step's prompt tokens
        left = self.budget - (s.n_grow * self.decode_tokens + s.pref_left if self.steps == 1 else 0)
        whole = self.steps > 1  # multi-step: a prompt that does not fit the step's budget waits (but the first)
        pinned = self.pinned[s.idx] if self.pinned is not None else None
        if queue.queued or pinned:
            room = self.max_batch - len(s.running)
            paged = self.paged
            if paged:
                kv_free = self.cap_blocks - s.blocks_at(s.iters + 1) - (self.watermark if s.running else 0)
            else:
                kv_free = self.kv_capacity - s.kv_reserved
            bs = self.bs
            spec_dec = self.spec_dec
            if pinned:
                room, kv_free, left = take_pinned(self, pinned, admitted, room, kv_free, left, now)
            lookup = self.prefix_lookup
            queues = queue.queues
            for p in queue.levels:
                q = queues[p]
                while q and room > 0:
                    job = q.head()
                    if job.deadline < now:
                        q.popleft()
                        queue.dequeued(job)
                        self.finish(job.block, job.i, DROPPED, job.deadline)
                        continue
                    if left <= 0:
                        room = 0  # v1: the running requests take the whole budget
                        break
                    need = -(-job.inp_eff // bs) if paged else job.input + job.output
                    if spec_dec is not None and paged:  # it holds speculation's tokens ahead from admission
                        need = spec_dec.admission_blocks(job, bs)
                    if need > kv_free:
                        room = 0  # FCFS: the head waits for memory, nobody overtakes it
                        break
                    if whole and admitted and job.inp_eff - job.cached > left:
                        room = 0
                        break
                    q.popleft()
                    queue.dequeued(job)
                    if lookup is not None:
                        lookup(s, job)
                    admitted.append(job)
                    room -= 1
                    kv_free -= need
                    left -= max(job.inp_eff - job.cached, 1)
                if room <= 0:
                    break
        if self.v1 and (admitted or s.running):
            start_segment_v1(self, s, now, admitted, left <= 0 and (queue.queued > 0 or bool(pinned)))
        elif admitted or s.running:
            self.start_segment(s, now, admitted)
        else:
            self.make_idle(s, now)

    # -- leaving (a server that stops: backends.gpu.lifecycle.ServerLifecycle.evict_all) -------------
    def finish(self, block: RequestBlock, i: int, status: int, at: float) -> None:
        if status == FAILED and self.on_failed is not None and self.on_failed(block, i, at):
            return
        block.status[i] = status
        block.path[i] = PATH_GPU
        block.done_at[i] = at
        if status == SERVED and self.on_served is not None and self.on_served(block, i, at):
            return
        block.pending -= 1
        if block.pending == 0:
            self.on_done(block)
