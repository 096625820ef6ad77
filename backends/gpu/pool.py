"""The self-hosted GPU pool: one shared queue in front of servers that batch continuously.

The pool wires its parts and is what the router and the autoscaler see:

* backends.gpu.admission_queue: the waiting requests (priority levels, FCFS within each);
* backends.gpu.overload_bound: which arrivals can no longer be admitted before the horizon (bounded memory);
* backends.gpu.batching: continuous batching and KV memory on each server, one timer per batch;
* backends.gpu.lifecycle: provisioning, cold starts, failures, draining and `resize`;
* backends.gpu.ledger: paid, healthy and busy time, work done, preemptions (the bill and the time series);
* backends.gpu.autoscaler: how many servers are provisioned when (it acts only through `resize`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np
import simpy

from backends.gpu.admission_queue import MIXED, AdmissionQueue, role_job, role_tokens
from backends.gpu.autoscaler import CapacityController
from backends.gpu.batching import BatchEngine
from backends.gpu.catalog import iteration_model
from backends.gpu.ledger import PoolLedger
from backends.gpu.lifecycle import ServerLifecycle
from backends.gpu.overload_bound import OverloadBound
from backends.gpu.server import Job, Server
from backends.gpu.server_routing import ServerRouter
from sim.config.backends import GpuPoolSpec
from sim.core.request_block import DROPPED, FAILED, PATH_GPU, RequestBlock


class GpuPool:
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
        role: str = MIXED,
    ):
        self.env = env
        self.role = role  # mixed, or one phase of a disaggregated pair (backends.gpu.disaggregation)
        self.spec = spec
        self.priorities = priorities
        self.timeouts = timeouts
        self.horizon_s = horizon_s
        self.on_done = on_done
        self.controller = CapacityController(env, self, spec, horizon_s)
        size = self.controller.size
        self.ledger = PoolLedger(warmup_s, horizon_s)
        levels = sorted(set(priorities))
        it = iteration_model(spec)
        min_share_s = it.base / spec.max_batch + it.per_seq
        # a queued request's prefix hit is known only at its admission: the bound counts no prefill then
        per_prefill_s = 0.0 if spec.prefix_cache.enabled else it.per_prefill_token
        per_kv_s = it.per_kv_token
        if spec.speculative is not None:  # still a lower bound: r tokens take at least r / (k + 1) iterations
            min_share_s, per_kv_s = min_share_s / (spec.speculative.k + 1), per_kv_s / (spec.speculative.k + 1)
        self.bound = OverloadBound(levels, horizon_s, min_share_s, per_prefill_s, size, spec.max_batch, per_kv_s)
        self.queue = AdmissionQueue(levels, timeouts, horizon_s, self.bound, role)
        self.engine = engine = BatchEngine(env, spec, size, self.queue, self.ledger, on_done)
        self.servers: list[Server] = engine.servers
        routed = spec.server_routing.policy != "least_loaded" or spec.prefix_cache.enabled
        self.router = ServerRouter(spec, engine, warmup_s) if routed else None
        self.max_batch = spec.max_batch
        rng_fail = rng_failures if rng_failures is not None else np.random.default_rng(0)
        self.lifecycle = ServerLifecycle(env, spec, engine, self.ledger, rng_cold, rng_fail)
        self.controller.start()

    # -- what the router and the autoscaler read ---------------------------------------------
    @property
    def queued(self) -> int:
        """Requests waiting in the queue for a batch (or pinned to a server's next boundary)."""
        return self.queue.queued + self.engine.num_pinned

    @property
    def queue_len(self) -> int:
        """Requests waiting for a batch (those that can never be admitted included)."""
        return self.queue.queued + self.engine.num_pinned + self.bound.never_admitted

    @property
    def running_total(self) -> int:
        return self.engine.running_total

    @property
    def in_flight(self) -> int:
        engine = self.engine
        return engine.running_total + self.queue.queued + engine.num_pinned + self.bound.never_admitted

    @property
    def num_ready(self) -> int:
        """READY servers that take new requests (not draining)."""
        return self.lifecycle.ready_count

    @property
    def provisioned(self) -> int:
        """Servers provisioned and not draining (the count the autoscaler and schedule steer)."""
        return self.lifecycle.provisioned

    @property
    def on_failed(self) -> Callable[[RequestBlock, int, float], bool] | None:
        """Routing's fallback hook: called with (block, i, time) for a request that would fail; True = taken."""
        return self.engine.on_failed

    @on_failed.setter
    def on_failed(self, fn: Callable[[RequestBlock, int, float], bool] | None) -> None:
        self.engine.on_failed = fn

    @property
    def on_served(self) -> Callable[[RequestBlock, int, float], bool] | None:
        """Routing's cascade hook: called with (block, i, time) for a request just served; True = taken."""
        return self.engine.on_served

    @on_served.setter
    def on_served(self, fn: Callable[[RequestBlock, int, float], bool] | None) -> None:
        self.engine.on_served = fn

    def oldest_wait(self, now: float) -> float:
        wait = self.queue.oldest_wait(now)
        if self.engine.num_pinned:
            wait = max([wait] + [now - d[0].arrival_at for d in self._pinned() if d])
        return wait

    def settled_before(self) -> float:
        """No queued (or pinned) request can end before this time by a drop recorded late."""
        t = self.queue.settled_before()
        if self.engine.num_pinned and self.queue.min_timeout_s < math.inf:
            t = min([t] + [d[0].arrival_at + self.queue.min_timeout_s for d in self._pinned() if d])
        return t

    def _pinned(self) -> list[deque[Job]]:
        return self.engine.pinned or []

    # -- what they do ------------------------------------------------------------------------
    def schedule(self, delay: float, fn: Callable[[simpy.Event], None]) -> None:
        self.lifecycle.schedule(delay, fn)

    def resize(self, k: int) -> None:
        """Provision or retire servers until `k` are provisioned (not draining): the autoscaler's one handle."""
        self.lifecycle.resize(k)

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
        if self.role != MIXED:
            inp, out, pre = role_tokens(self.role, inp, out, pre)
        engine = self.engine
        if inp + out > engine.max_tokens or not self.servers:
            engine.finish(block, i, FAILED, now)
            return
        deadline = now + timeout if timeout is not None else math.inf
        if self.router is not None:
            if not self.queue.queued and self.router.place(block, i, now, inp, out, priority, deadline):
                return
        elif not self.queue.queued and engine.idle:
            s = engine.pop_idle()
            if s is not None:
                if self.role == MIXED:
                    job = Job(block, i, now, inp, out, priority, deadline, inp - pre)
                else:
                    job = role_job(self.role, block, i, now, priority, deadline)
                engine.start_segment(s, now, [job])
                return
        if self.bound.refuses(priority, now):
            self.bound.record_jobless(block, i, priority, deadline)
            if block.pending == 0:
                self.on_done(block)
            return
        self.queue.arrive(block, i, now, deadline, priority, (inp, out, pre))  # columns until it is at the front
        engine.claim(inp if engine.paged else inp + out)

    def close(self, now: float) -> None:
        """At the horizon: close the ledger's open stretches; a request queued past its deadline was dropped
        then, not in flight (those still queued or running stay in flight)."""
        self.ledger.close(self.servers, now)
        engine = self.engine
        self.queue.drop_expired(now, lambda block, i, deadline: engine.finish(block, i, DROPPED, deadline))
        for pinned in self._pinned():
            for job in [j for j in pinned if j.deadline < now]:
                pinned.remove(job)
                engine.num_pinned -= 1
                engine.finish(job.block, job.i, DROPPED, job.deadline)
