"""Folds finished request blocks into per-replication tallies: counters, latency histograms, per-minute series.

Tallies (one value per request) live apart from levels (time-weighted, see sim.timeseries). Everything is
folded as soon as a block finishes, in any order. The exact running maximum of requests in flight is swept
in time order up to a frontier before which every arrival and every end is known (ConcurrencyPeak), so it
holds only the events after the frontier, not the blocks that finished behind a block still waiting for
the GPU queue (under overload: every block of the day behind the first one, 8-24 bytes a request).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from sim.config import Experiment
from sim.core.calendar import DAY_S, HOUR_S
from sim.core.histogram import LogHistogram
from sim.core.latency import latencies
from sim.core.request_block import (
    DROPPED,
    FAILED,
    PATH_API,
    PATH_API_BATCH,
    PATH_CACHE,
    PATH_GPU,
    PATH_NAMES,
    PENDING,
    SERVED,
    STAGE_ESCALATED,
    RequestBlock,
)
from sim.core.timeseries import LevelSeries, counts_per_minute, minutes_in
from sim.engine.censored import Unserved
from sim.engine.hybrid_tally import HybridTally
from sim.engine.pool_tally import PoolTally

COUNTERS = (
    "requests",
    "served",
    "failed",
    "dropped",
    "in_flight",
    "overdue",
    "cache_hits",
    "served_by_api",
    "served_by_gpu",
    "tokens_in",
    "tokens_out",
    "slo_met",
    "tpot_n",
    "queue_wait_n",
)


class ConcurrencyPeak:
    """Exact max of (arrived - finished) over time at or after `from_s`, swept in time order.

    Every event before `frontier` has been swept; the arrivals and finite ends of folded blocks at or after it
    wait in two buffers. `advance(until, live)` sweeps [frontier, until) from the buffers and from the blocks
    still live (read in place); the caller guarantees that no end before `until` is still to be written."""

    def __init__(self, from_s: float):
        self.from_s = from_s
        self.level = 0
        self.peak = 0
        self.frontier = -math.inf
        self._arrivals: list[np.ndarray] = []
        self._ends: list[np.ndarray] = []

    @property
    def num_buffered(self) -> int:
        """Events held after the frontier (tests: bounded under overload)."""
        return sum(len(a) for a in self._arrivals) + sum(len(e) for e in self._ends)

    def fold(self, arrivals: np.ndarray, ends: np.ndarray) -> None:
        """A finished block's arrivals (sorted) and end times (inf: in flight at the horizon)."""
        a = arrivals[np.searchsorted(arrivals, self.frontier) :]
        e = ends[np.isfinite(ends) & (ends >= self.frontier)]
        if len(a):
            self._arrivals.append(a)
        if len(e):
            self._ends.append(e)

    def advance(self, until: float, live: Iterable[RequestBlock] = ()) -> None:
        lo = self.frontier
        if until <= lo:
            return
        arr_parts: list[np.ndarray] = []
        end_parts: list[np.ndarray] = []
        for buf, parts in ((self._arrivals, arr_parts), (self._ends, end_parts)):
            keep: list[np.ndarray] = []
            for x in buf:
                m = x < until
                parts.append(x[m])
                if not m.all():
                    keep.append(x[~m])
            buf[:] = keep
        for b in live:
            at = b.arrival_at
            arr_parts.append(at[np.searchsorted(at, lo) : np.searchsorted(at, until)])
            done = b.done_at
            m = (b.status != PENDING) & (done >= lo) & (done < until)
            if m.any():
                end_parts.append(done[m])
        self.frontier = until
        arrivals = np.concatenate(arr_parts) if arr_parts else np.zeros(0)
        now_ends = np.concatenate(end_parts) if end_parts else np.zeros(0)
        times = np.concatenate([arrivals, now_ends])
        deltas = np.concatenate([np.ones(len(arrivals), dtype=np.int64), -np.ones(len(now_ends), dtype=np.int64)])
        if len(times) == 0:
            return
        order = np.lexsort((deltas, times))
        levels = self.level + np.cumsum(deltas[order])
        after = times[order] >= self.from_s
        if after.any():
            self.peak = max(self.peak, int(levels[after].max()))
        self.level = int(levels[-1])


class Recorder:
    def __init__(self, exp: Experiment, horizon_s: float):
        self.exp = exp
        self.horizon_s = horizon_s
        self.warmup_s = exp.warmup_h * HOUR_S
        self.num_minutes = minutes_in(horizon_s)
        classes = exp.workload.classes
        self.class_names = [c.name for c in classes]
        self.slo = np.array([c.slo_ttft_s for c in classes])
        self.peak_hour = int(exp.workload.arrivals.peak_hour)
        self.peak_covered = peak_hour_covered(self.peak_hour, self.warmup_s, horizon_s)
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.sums = {"tpot": 0.0, "queue_wait": 0.0, "cost_api": 0.0}
        self.ttft = LogHistogram()
        self.e2e = LogHistogram()
        self.peak_ttft = LogHistogram()
        self.ttft_by_hour = [LogHistogram() for _ in range(24)]
        self.e2e_by_hour = [LogHistogram() for _ in range(24)]
        # requests without an answer, for the censored percentiles (sim.censored): all, peak hour, by hour
        self.unserved = Unserved()
        self.peak_unserved = Unserved()
        self.unserved_by_hour = [Unserved() for _ in range(24)]
        self.cost_by_class = np.zeros(len(classes))
        self.cost_by_path: dict[str, float] = {}
        self.served_by_class = np.zeros(len(classes), dtype=np.int64)
        self.escalated_by_class = np.zeros(len(classes), dtype=np.int64)  # routing.escalate's second calls
        self.requests_by_class = np.zeros(len(classes), dtype=np.int64)
        self.arrivals = np.zeros(self.num_minutes)
        self.api_spend = np.zeros(self.num_minutes)
        self.in_flight = LevelSeries(self.num_minutes)
        self.queue = LevelSeries(self.num_minutes)
        self.concurrency = ConcurrencyPeak(self.warmup_s)
        # the concurrency sweep reads the blocks still live and asks how far every end is written (Replication)
        self.live_blocks: Callable[[], Iterable[RequestBlock]] = lambda: ()
        self.settled_before: Callable[[], float] = lambda: -math.inf
        self._rows_by_block: dict[int, dict[str, np.ndarray]] = {}
        self.keep_requests = exp.output.requests
        self.hybrid = HybridTally(exp)
        self.hybrid.peak_covered = self.peak_covered
        pools = list(exp.backends.pools())
        self.pools = PoolTally(pools, horizon_s) if exp.backends.gpu_pools else None  # named pools only

    @property
    def request_rows(self) -> list[dict[str, np.ndarray]]:
        """Per-request columns of the folded blocks, in block order (output.requests)."""
        return [self._rows_by_block[k] for k in sorted(self._rows_by_block)]

    # blocks may finish out of order: fold each at once; sweep the concurrency peak up to what is settled
    def block_done(self, block: RequestBlock) -> None:
        self._fold(block)
        self.concurrency.advance(self.settled_before(), self.live_blocks())

    def flush(self, blocks_in_flight: list[RequestBlock]) -> None:
        """At the horizon: fold every remaining block (their pending requests count as in flight)."""
        for b in sorted(blocks_in_flight, key=lambda b: b.index):
            self._fold(b)
        self.concurrency.advance(math.inf)

    def _fold(self, b: RequestBlock) -> None:
        n = len(b)
        ends = np.where(b.status == PENDING, np.inf, b.done_at)
        self.concurrency.fold(b.arrival_at, ends)
        self.arrivals += counts_per_minute(b.arrival_at, self.num_minutes) if n else 0.0
        self.in_flight.add(b.arrival_at, np.minimum(ends, self.horizon_s))
        gpu = b.path == PATH_GPU
        if gpu.any():
            qend = np.where(np.isnan(b.start_at[gpu]), np.minimum(ends[gpu], self.horizon_s), b.start_at[gpu])
            self.queue.add(b.arrival_at[gpu], qend)
        if n and b.cost_usd.any():
            self.api_spend += counts_per_minute(b.arrival_at, self.num_minutes, weights=b.cost_usd)
        m = b.arrival_at >= self.warmup_s
        if not m.all():
            b = _subset(b, m)
        self._tally(b)
        if self.keep_requests and len(b):
            rows = _request_columns(b, self.class_names)
            if self.exp.backends.gpu_pools:
                rows["pool"] = b.pool  # index in backends.gpu_pools (path gpu)
            if self.exp.routing.escalate:
                rows["stage"] = b.stage  # 2: escalated (routing.escalate)
            self._rows_by_block[b.index] = rows

    def _tally(self, b: RequestBlock) -> None:
        c = self.counts
        # an answer still streaming at the horizon is in flight, not served
        st = np.where((b.status == SERVED) & (b.done_at > self.horizon_s), PENDING, b.status)
        served = st == SERVED
        c["requests"] += len(b)
        c["served"] += int(served.sum())
        c["failed"] += int((st == FAILED).sum())
        c["dropped"] += int((st == DROPPED).sum())
        c["in_flight"] += int((st == PENDING).sum())
        # waiting (not admitted) at the horizon for longer than the class's TTFT SLO: counts against availability
        waiting = (st == PENDING) & np.isnan(b.start_at)
        if waiting.any():
            c["overdue"] += int((self.horizon_s - b.arrival_at[waiting] > self.slo[b.class_idx[waiting]]).sum())
        c["cache_hits"] += int((served & (b.path == PATH_CACHE)).sum())
        c["served_by_gpu"] += int((served & (b.path == PATH_GPU)).sum())
        c["served_by_api"] += int((served & ((b.path == PATH_API) | (b.path == PATH_API_BATCH))).sum())
        c["tokens_in"] += int(b.input_tokens[served].sum())
        c["tokens_out"] += int(b.output_tokens[served].sum())
        lat = latencies(b, served)
        self.hybrid.add(b, st, lat)
        self._unserved(b, st)
        self.requests_by_class += np.bincount(b.class_idx, minlength=len(self.class_names))
        self.served_by_class += np.bincount(lat.class_idx, minlength=len(self.class_names))
        escalated = b.stage == STAGE_ESCALATED
        if escalated.any():
            self.escalated_by_class += np.bincount(b.class_idx[escalated], minlength=len(self.class_names))
        ttft, e2e, hour = lat.ttft_s, lat.e2e_s, lat.hour
        c["slo_met"] += int((ttft <= self.slo[lat.class_idx]).sum())
        self.ttft.add(ttft)
        self.e2e.add(e2e)
        if self.pools is not None:
            self.pools.add(b, st, served, ttft, e2e)
        peak = hour == self.peak_hour
        if peak.any():
            self.peak_ttft.add(ttft[peak])
        for h in np.unique(hour).tolist():
            sel = hour == h
            self.ttft_by_hour[h].add(ttft[sel])
            self.e2e_by_hour[h].add(e2e[sel])
        tpot = lat.tpot_s  # generated streams only: answers from a cache or a batch API arrive whole
        if len(tpot):
            self.sums["tpot"] += float(tpot.sum())
            c["tpot_n"] += len(tpot)
        started = ~np.isnan(b.start_at)
        if started.any():
            # the event clock reaches an arrival as now + (t - now), which can round a hair below t: clamp at 0
            self.sums["queue_wait"] += float(np.maximum(b.start_at[started] - b.arrival_at[started], 0.0).sum())
            c["queue_wait_n"] += int(started.sum())
        cost = b.cost_usd
        if cost.any():
            self.sums["cost_api"] += float(cost.sum())
            self.cost_by_class += np.bincount(b.class_idx, weights=cost, minlength=len(self.class_names))
            for code in np.unique(b.path[cost > 0]).tolist():
                name = PATH_NAMES[code]
                self.cost_by_path[name] = self.cost_by_path.get(name, 0.0) + float(cost[b.path == code].sum())

    def _unserved(self, b: RequestBlock, st: np.ndarray) -> None:
        """Requests still waiting (not admitted) at the horizon or dropped: censored at their wait so far."""
        waiting = (st == PENDING) & np.isnan(b.start_at)
        dropped = st == DROPPED
        if not (waiting.any() or dropped.any()):
            return
        sel = waiting | dropped
        arr = b.arrival_at[sel]
        wait = np.where(dropped[sel], b.done_at[sel], self.horizon_s) - arr
        cls = b.class_idx[sel]
        self.unserved.add(wait)
        hour = (np.floor(arr / HOUR_S).astype(np.int64)) % 24
        self.peak_unserved.add(wait[hour == self.peak_hour])
        for h in np.unique(hour).tolist():
            self.unserved_by_hour[h].add(wait[hour == h])
        self.hybrid.add_unserved(cls, wait, hour == self.peak_hour)


def peak_hour_covered(peak_hour: int, from_s: float, horizon_s: float) -> bool:
    """True if the measured window [from_s, horizon_s] holds a whole hour that starts at peak_hour."""
    first = peak_hour * HOUR_S
    if from_s > first:
        first += math.ceil((from_s - first) / DAY_S) * DAY_S
    return first + HOUR_S <= horizon_s


def _subset(b: RequestBlock, m: np.ndarray) -> RequestBlock:
    s = RequestBlock(
        b.index,
        b.start_s,
        b.end_s,
        b.arrival_at[m],
        b.class_idx[m],
        b.input_tokens[m],
        b.output_tokens[m],
        None if b.prompt_id is None else b.prompt_id[m],
    )
    for name in (
        "status",
        "path",
        "provider",
        "pool",
        "hop",
        "stage",
        "start_at",
        "first_token_at",
        "done_at",
        "cost_usd",
        "cached_tokens",
        "prefill_tokens",
        "retries",
        "flags",
    ):
        setattr(s, name, getattr(b, name)[m])
    return s


def _request_columns(b: RequestBlock, class_names: list[str]) -> dict[str, np.ndarray]:
    return {
        "arrival_at": b.arrival_at,
        "class_idx": b.class_idx,
        "input_tokens": b.input_tokens,
        "output_tokens": b.output_tokens,
        "status": b.status,
        "path": b.path,
        "provider": b.provider,
        "start_at": b.start_at,
        "first_token_at": b.first_token_at,
        "done_at": b.done_at,
        "cost_usd": b.cost_usd,
        "cached_tokens": b.cached_tokens,
        "retries": b.retries,
        "flags": b.flags,
    }
