"""How many GPU servers are provisioned when: a fixed count, an hourly schedule, an autoscaler, or both.

* fixed: `servers` are provisioned at t = 0 (each cold-starts) and stay for the horizon.
* `schedule` (24 counts): at every hour boundary the pool is resized to the count of that hour of the day
  (the clock starts at 00:00 of `start_weekday`); scale-ups cold-start, scale-downs drain.
* `autoscaler`: every `evaluate_every_s` (one event per period, not per request) the controller computes a
  desired count from its target, clips it to [min_servers, max_servers] and, when a schedule is given
  too, to at least the schedule's count for the hour. A change is applied once the desire has pointed
  the same way for `scale_up_delay_s` (up) or `scale_down_delay_s` (down).
    - target_in_flight_per_server: desired = ceil(requests in flight (running + queued) / target).
    - target_queue_wait_s: one more server while the oldest waiting request has waited longer than the
      target; one fewer while nothing waits and the running requests would fit on one server fewer at
      half of max_batch each.
  min_servers = 0 allows scale-to-zero: the first request queues and the next evaluation provisions.

Scaling up first takes back servers that are draining (still warm), then provisions new ones (paid from
that moment, cold start before serving). Scaling down removes servers still cold-starting, then servers
under repair, then idle ones, then drains the least-loaded busy ones (paid until their batch finishes).
GPU cost is billed on provisioned time only (backends.gpu.ledger).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import simpy

from sim.config.backends import GpuPoolSpec
from sim.core.calendar import HOUR_S


class ScalablePool(Protocol):
    """What the controller sees of the pool, and the one way it acts on it: `resize`."""

    @property
    def provisioned(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def queued(self) -> int: ...
    @property
    def running_total(self) -> int: ...
    def oldest_wait(self, now: float) -> float: ...
    def resize(self, k: int) -> None: ...
    def schedule(self, delay: float, fn: Callable[[Any], None]) -> None: ...


class CapacityController:
    def __init__(self, env: simpy.Environment, pool: ScalablePool, spec: GpuPoolSpec, horizon_s: float):
        self.env = env
        self.pool = pool
        self.auto = spec.autoscaler
        self.enabled = spec.autoscaler.enabled
        self.schedule = spec.schedule
        self.horizon_s = horizon_s
        self.max_batch = spec.max_batch
        sizes = [spec.servers]
        if self.enabled:
            sizes.append(self.auto.max_servers)
        if self.schedule is not None:
            sizes.append(max(self.schedule))
        self.size = max(sizes)
        self.floor = self.schedule[0] if self.schedule is not None else 0
        if self.enabled:
            self.initial = min(max(spec.servers, self.auto.min_servers, self.floor), self.auto.max_servers)
        elif self.schedule is not None:
            self.initial = self.floor
        else:
            self.initial = spec.servers
        self.up_since: float | None = None
        self.down_since: float | None = None
        self.scale_ups = 0
        self.scale_downs = 0

    def start(self) -> None:
        self.pool.resize(self.initial)
        if self.schedule is not None:
            self._next_hour(HOUR_S)
        if self.enabled:
            self._tick_at(self.auto.evaluate_every_s)

    # -- schedule ---------------------------------------------------------------------------
    def _next_hour(self, t: float) -> None:
        if t >= self.horizon_s:
            return
        self.pool.schedule(t - self.env.now, lambda _e: self._on_hour(t))

    def _on_hour(self, t: float) -> None:
        assert self.schedule is not None
        self.floor = self.schedule[int(round(t / HOUR_S)) % 24]
        if self.enabled:
            if self.pool.provisioned < self.floor:
                self.scale_to(self.floor)
        else:
            self.scale_to(self.floor)
        self._next_hour(t + HOUR_S)

    # -- autoscaler -------------------------------------------------------------------------
    def _tick_at(self, delay: float) -> None:
        if self.env.now + delay >= self.horizon_s:
            return
        self.pool.schedule(delay, lambda _e: self._tick())

    def desired(self) -> int:
        a, pool = self.auto, self.pool
        cur = pool.provisioned
        if a.target_in_flight_per_server is not None:
            want = math.ceil(pool.in_flight / a.target_in_flight_per_server - 1e-9)
        else:
            assert a.target_queue_wait_s is not None
            if pool.queued and (cur == 0 or pool.oldest_wait(self.env.now) > a.target_queue_wait_s):
                want = cur + 1
            elif not pool.queued and cur > 0 and pool.running_total <= (cur - 1) * self.max_batch * 0.5:
                want = cur - 1
            else:
                want = cur
        return min(max(want, a.min_servers, self.floor), a.max_servers)

    def _tick(self) -> None:
        now = self.env.now
        a = self.auto
        cur = self.pool.provisioned
        want = self.desired()
        if want > cur:
            self.down_since = None
            if self.up_since is None:
                self.up_since = now
            if now - self.up_since >= a.scale_up_delay_s - 1e-9:
                self.scale_to(want)
                self.up_since = None
        elif want < cur:
            self.up_since = None
            if self.down_since is None:
                self.down_since = now
            if now - self.down_since >= a.scale_down_delay_s - 1e-9:
                self.scale_to(want)
                self.down_since = None
        else:
            self.up_since = self.down_since = None
        self._tick_at(a.evaluate_every_s)

    # -- resizing ---------------------------------------------------------------------------
    def scale_to(self, k: int) -> None:
        cur = self.pool.provisioned
        if k > cur:
            self.scale_ups += 1
        elif k < cur:
            self.scale_downs += 1
        self.pool.resize(k)
