"""A router's estimate of how long a request arriving now would wait in the GPU queue.

What a real router can see: the queue ahead of the request (its priority and better), the batch sizes and
current decode-iteration times of the servers, the mean output length of the workload (not each request's
own), and the recent rate of GPU-bound arrivals of each priority. While a batch slot is free the wait is ~0;
otherwise slots free up at R = sum over busy servers of n_s / (mean output tokens x iteration_s), of which
better-priority arrivals take lambda_better (an exponentially weighted rate, time constant `tau_s`), and the
request waits for (requests ahead - free slots + 1) / (R - lambda_better). KV-memory limits and prefill
iterations are not modelled, so that estimate is optimistic when memory is the bottleneck, and it is a small
difference of noisy rates when better-priority traffic nearly fills the pool; the prediction is therefore
the larger of it and the head-of-line delay (how long the oldest request of the same priority has waited
so far: Ibrahim & Whitt's HOL predictor), which catches a queue that is not draining.
"""

from __future__ import annotations

import math

from backends.gpu.pool import GpuPool
from backends.gpu.server import READY


class WaitPredictor:
    def __init__(self, pool: GpuPool, mean_output_tokens: float, tau_s: float = 60.0):
        self.pool = pool
        self.mean_out = max(mean_output_tokens, 1.0)
        self.tau_s = tau_s
        self._rate: dict[int, tuple[float, float]] = {}  # priority -> (EWMA rate at time t, t)

    def note_arrival(self, priority: int, now: float) -> None:
        """A request of this priority joined the GPU pool (feeds the arrival-rate estimate)."""
        r, t = self._rate.get(priority, (0.0, now))
        self._rate[priority] = (r * math.exp(-(now - t) / self.tau_s) + 1.0 / self.tau_s, now)

    def _better_rate(self, priority: int, now: float) -> float:
        return sum(r * math.exp(-(now - t) / self.tau_s) for p, (r, t) in self._rate.items() if p < priority)

    def predict(self, priority: int, now: float = 0.0) -> float:
        pool = self.pool
        queues = pool.queue.queues
        ahead = sum(len(q) for p, q in queues.items() if p <= priority)
        free = 0
        rate = 0.0
        ready = False
        for s in pool.servers:
            if s.state != READY or s.draining:
                continue
            ready = True
            n = len(s.running)
            free += max(pool.max_batch - n, 0)
            if n > 0 and s.iteration_s > 0.0:
                rate += n / (self.mean_out * s.iteration_s)
        if not ready:
            return math.inf
        if ahead < free:
            return 0.0
        if self._rate:
            rate -= self._better_rate(priority, now)
        if rate <= 0.0:
            return math.inf
        own = queues.get(priority)
        hol = now - own.head_arrival_at() if own else 0.0
        return max((ahead - free + 1) / rate, hol)
