"""The GPU pool's ledger: what its servers were paid for and what they did, for the bill and the time series.

* provisioned (paid) stretches: from provisioning to deprovisioning, cold starts and repairs included (the
  GPU bill is provisioned time only, sim.engine.bill);
* healthy stretches: READY, serving or able to serve (availability);
* busy stretches: holding a batch, folded as they come into an IntervalTally (bounded memory);
* work: the server-time the work done would take in full batches (after warm-up), in total and per
  simulated minute (capacity used over the day);
* counts: preemptions (after warm-up) and the events the pool scheduled.

Each server carries the start of its open stretches (`prov_since`, `healthy_since`, `busy_since`; -1: none
open); the ledger closes them.
"""

from __future__ import annotations

import math

from backends.gpu.server import Server
from sim.core.calendar import MINUTE_S
from sim.core.timeseries import IntervalTally, minutes_in


class PoolLedger:
    def __init__(self, warmup_s: float, horizon_s: float):
        self.warmup_s = warmup_s
        self.busy = IntervalTally(warmup_s, horizon_s)
        self.healthy_intervals: list[tuple[float, float]] = []
        self.provisioned_intervals: list[tuple[float, float]] = []
        self.work_s = 0.0
        # a segment is counted in the minute it ends (an open-ended run, engine_bench's horizon = inf, keeps one bin)
        self.work_by_minute = [0.0] * (minutes_in(horizon_s) if math.isfinite(horizon_s) else 1)
        self.preemptions = 0
        self.num_events = 0

    def add_work(self, now: float, work_s: float) -> None:
        """A segment ending now did `work_s` of full-batch server-time (counted after warm-up)."""
        if now >= self.warmup_s:
            self.work_s += work_s
            minutes = self.work_by_minute
            minutes[min(int(now / MINUTE_S), len(minutes) - 1)] += work_s

    def count_preemption(self, now: float) -> None:
        if now >= self.warmup_s:
            self.preemptions += 1

    def end_busy(self, s: Server, now: float) -> None:
        if s.busy_since >= 0.0:
            self.busy.add(s.busy_since, now)
            s.busy_since = -1.0

    def end_healthy(self, s: Server, now: float) -> None:
        if s.healthy_since >= 0.0:
            self.healthy_intervals.append((s.healthy_since, now))
            s.healthy_since = -1.0

    def end_provisioned(self, s: Server, now: float) -> None:
        if s.prov_since >= 0.0:
            self.provisioned_intervals.append((s.prov_since, now))
            s.prov_since = -1.0

    def close(self, servers: list[Server], now: float) -> None:
        """At the horizon: close every open stretch."""
        for s in servers:
            self.end_busy(s, now)
            self.end_healthy(s, now)
            self.end_provisioned(s, now)
