"""Per-GPU-pool tallies of the requests each pool served (named pools: backends.gpu_pools).

A request belongs to the pool that last held it (`RequestBlock.pool`, path gpu). The recorder hands every
folded block's served TTFT and e2e here, so the per-pool percentiles use the same latencies as the totals;
a request of a pool still waiting at the horizon, or dropped, is censored at its wait (sim/engine/censored.py).
"""

from __future__ import annotations

import numpy as np

from sim.core.histogram import LogHistogram
from sim.core.request_block import DROPPED, PATH_GPU, PENDING, RequestBlock
from sim.engine.censored import Unserved, censored_quantile


class PoolTally:
    def __init__(self, names: list[str], horizon_s: float):
        self.names = names
        self.horizon_s = horizon_s
        k = len(names)
        self.ttft = [LogHistogram() for _ in names]
        self.e2e = [LogHistogram() for _ in names]
        self.unserved = [Unserved() for _ in names]
        self.requests = np.zeros(k, dtype=np.int64)
        self.served = np.zeros(k, dtype=np.int64)
        self.queue_wait_s = np.zeros(k)
        self.queue_wait_n = np.zeros(k, dtype=np.int64)

    def add(self, b: RequestBlock, st: np.ndarray, served: np.ndarray, ttft: np.ndarray, e2e: np.ndarray) -> None:
        """One block (after warm-up): `served` its mask, ttft/e2e the latencies of its served requests."""
        gpu = b.path == PATH_GPU
        if not gpu.any():
            return
        k = len(self.names)
        self.requests += np.bincount(b.pool[gpu], minlength=k)
        on_gpu = gpu[served]
        pools = b.pool[served][on_gpu]
        self.served += np.bincount(pools, minlength=k)
        t, e = ttft[on_gpu], e2e[on_gpu]
        for j in np.unique(pools).tolist():
            sel = pools == j
            self.ttft[j].add(t[sel])
            self.e2e[j].add(e[sel])
        started = gpu & ~np.isnan(b.start_at)
        if started.any():
            wait = np.maximum(b.start_at[started] - b.arrival_at[started], 0.0)
            self.queue_wait_s += np.bincount(b.pool[started], weights=wait, minlength=k)
            self.queue_wait_n += np.bincount(b.pool[started], minlength=k)
        waiting = gpu & (((st == PENDING) & np.isnan(b.start_at)) | (st == DROPPED))
        if waiting.any():
            ends = np.where(st[waiting] == DROPPED, b.done_at[waiting], self.horizon_s)
            wait = ends - b.arrival_at[waiting]
            pools_w = b.pool[waiting]
            for j in np.unique(pools_w).tolist():
                self.unserved[j].add(wait[pools_w == j])

    def metrics(self, j: int) -> dict[str, float | None]:
        """Pool j's request metrics, named as the totals (the replication adds `.pool.<name>`)."""
        out: dict[str, float | None] = {
            "requests": int(self.requests[j]),
            "served_by_gpu": int(self.served[j]),
            "ttft_mean_s": self.ttft[j].mean,
            "e2e_mean_s": self.e2e[j].mean,
            "queue_wait_mean_s": float(self.queue_wait_s[j] / self.queue_wait_n[j]) if self.queue_wait_n[j] else None,
        }
        for kind, hist in (("ttft", self.ttft[j]), ("e2e", self.e2e[j])):
            for q in (0.5, 0.95, 0.99):
                out[f"{kind}_p{round(q * 100)}_s"] = censored_quantile(hist, self.unserved[j], q)[0]
        return out
