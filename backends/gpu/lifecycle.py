"""The GPU pool's server lifecycle: provisioning, cold starts, failures and repairs, draining, resizing.

Servers are OFF, COLD (provisioned, paid, loading: `cold_start_s`), READY, or DOWN (failed, repairing,
paid). Every start is a cold start: after a repair, on scale-up, and at t = 0 only with `initial_cold_start`
(the servers provisioned at t = 0 start warm by default: the deployment is running when the horizon starts,
and no cold-start draw is made for them). Time to failure is exponential with mean `failures.mtbf_h` while a
server is READY; repair takes Exponential(`mttr_h`); requests running on a failed server go back to the
front of the queue to start over (`requeue`) or fail (`fail`). A server that drains takes no new requests
and is deprovisioned once its batch has finished.

Every transition bumps the server's `life`, so the timers of an earlier life (a cold start, a failure) are
ignored when they fire.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from backends.gpu.batching import BatchEngine
from backends.gpu.catalog import derived_cold_start_s
from backends.gpu.ledger import PoolLedger
from backends.gpu.pinned import unpin
from backends.gpu.server import COLD, DOWN, OFF, READY, Server
from sim.config.backends import GpuPoolSpec
from sim.core.calendar import HOUR_S
from sim.core.request_block import FAILED


class ServerLifecycle:
    def __init__(
        self,
        env: simpy.Environment,
        spec: GpuPoolSpec,
        engine: BatchEngine,
        ledger: PoolLedger,
        rng_cold: np.random.Generator,
        rng_failures: np.random.Generator,
    ):
        from sim.config.distributions import ConstantSpec
        from workloads.distributions import make_distribution

        self.env = env
        self.engine = engine
        self.servers = engine.servers
        self.ledger = ledger
        self.ready_count = 0  # READY servers that take new requests (not draining)
        self.rng_cold = rng_cold
        self.rng_fail = rng_failures
        fs = spec.failures
        self.mtbf_s = fs.mtbf_h * HOUR_S if fs.mtbf_h is not None else None
        self.mttr_s = fs.mttr_h * HOUR_S
        self.initial_cold_start = spec.initial_cold_start
        self.requeue_on_failure = fs.on_failure == "requeue"
        cold_spec = spec.cold_start_s
        if cold_spec is None:
            cold_spec = ConstantSpec(dist="constant", value=derived_cold_start_s(spec))
        self.cold = make_distribution(cold_spec)
        engine.on_drained = self.deprovision

    def schedule(self, delay: float, fn: Callable[[simpy.Event], None]) -> None:
        """Call `fn` after `delay` simulated seconds (a SimPy event: lifecycle and the controller, not hot paths)."""
        ev = simpy.Timeout(self.env, delay)
        ev.callbacks.append(fn)
        self.ledger.num_events += 1

    @property
    def provisioned(self) -> int:
        """Servers provisioned and not draining (the count the autoscaler and schedule steer)."""
        return sum(1 for s in self.servers if s.state != OFF and not s.draining)

    # -- transitions -------------------------------------------------------------------------
    def provision(self, s: Server) -> None:
        s.prov_since = self.env.now
        self._cold_start(s, warm=self.env.now == 0.0 and not self.initial_cold_start)

    def _cold_start(self, s: Server, warm: bool = False) -> None:
        s.state = COLD
        s.life += 1
        life = s.life
        delay = 0.0 if warm else float(self.cold.sample(self.rng_cold, 1)[0])
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
        self.engine.admit(s, now)  # takes waiting requests, or waits idle

    def _leave_ready(self, s: Server, now: float) -> None:
        if s.state == READY:
            self.ledger.end_healthy(s, now)
            if not s.draining:
                self.ready_count -= 1
        self.ledger.end_busy(s, now)
        s.version += 1  # cancels the batch timer
        s.timer_m = 0

    def deprovision(self, s: Server) -> None:
        now = self.env.now
        self._leave_ready(s, now)
        if s.running:
            self.evict_all(s, now, requeue=True)
        self.ledger.end_provisioned(s, now)
        s.state = OFF
        s.draining = False
        s.life += 1

    def evict_all(self, s: Server, now: float, requeue: bool) -> None:
        """Take every request off a server that stops: back to the queue front (oldest first) or failed."""
        engine = self.engine
        if engine.pinned is not None and engine.pinned[s.idx]:
            unpin(engine, s)
        jobs = list(s.running.values())
        engine.running_total -= len(jobs)
        s.clear_batch()
        for job in reversed(jobs):
            job.seq = -1
            job.prefill_iter = -1
            if requeue:
                job.restarted(now)
                engine.queue.requeue(job)
            else:
                engine.finish(job.block, job.i, FAILED, now)

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
        if self.engine.queue.queued and s.running:  # take waiting requests at the next boundary
            self.engine.wake(s)

    def _fail(self, s: Server, life: int) -> None:
        if s.life != life or s.state != READY:
            return
        now = self.env.now
        draining = s.draining
        self._leave_ready(s, now)
        self.evict_all(s, now, requeue=self.requeue_on_failure)
        s.state = DOWN
        s.life += 1
        if draining:
            self.deprovision(s)
            return
        life = s.life
        self.schedule(float(self.rng_fail.exponential(self.mttr_s)), lambda _e: self._repaired(s, life))
        self.engine.dispatch_idle(now)

    def _repaired(self, s: Server, life: int) -> None:
        if s.life != life or s.state != DOWN:
            return
        self._cold_start(s)

    # -- the autoscaler's handle -------------------------------------------------------------
    def resize(self, k: int) -> None:
        """Provision or retire servers until `k` are provisioned (not draining).

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
            self.engine.dispatch_idle(self.env.now)
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
