"""A router's estimate of how long a request arriving now would wait in the GPU queue.

What a real router can see: the queue length ahead of the request (its priority and better), the batch
sizes and current decode-iteration times of the servers, and the mean output length of the workload (not
each request's own). While a batch slot is free the wait is ~0; otherwise slots free up at a rate of
sum over busy servers of n_s / (mean output tokens x iteration_s), and the request waits for
(requests ahead - free slots + 1) of them. KV-memory limits and prefill iterations are not modelled, so the
estimate is optimistic when memory, not batch slots, is the bottleneck.
"""

from __future__ import annotations

import math

from backends.gpu_pool import GpuPool


class WaitPredictor:
    def __init__(self, pool: GpuPool, mean_output_tokens: float):
        self.pool = pool
        self.mean_out = max(mean_output_tokens, 1.0)

    def predict(self, priority: int) -> float:
        pool = self.pool
        ahead = sum(len(q) for p, q in pool.queues.items() if p <= priority)
        free = 0
        rate = 0.0
        ready = False
        for s in pool.servers:
            if not s.ready:
                continue
            ready = True
            free += max(pool.max_batch - s.n, 0)
            if s.n > 0 and s.A > 0.0:
                rate += s.n / (self.mean_out * s.A)
        if not ready:
            return math.inf
        if ahead < free:
            return 0.0
        if rate <= 0.0:
            return math.inf
        return (ahead - free + 1) / rate
