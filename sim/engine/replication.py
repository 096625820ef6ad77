"""One replication: wires the request path on a SimPy environment and returns plain data.

    arrivals (blocks, numpy) -> response cache -> router -> API (vectorised) | GPU pool (events) -> recorder

Requests that need no shared state (cache hits, API calls, routing decided by class) are computed for a
whole block at once; only requests that contend (the GPU pool, overflow decisions) become events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from backends.api.provider import ApiBackend
from backends.cache.response import ResponseCache
from backends.gpu.catalog import server_price
from backends.gpu.disaggregation import connect_pools
from backends.gpu.pool import GpuPool
from backends.routing.router import Router
from sim.config import Experiment
from sim.config.backends import SHORTHAND_POOL, GpuPoolSpec
from sim.core.calendar import HOUR_S
from sim.core.heap import bound_heap_growth
from sim.core.request_block import RequestBlock
from sim.core.rng import name_key, stream
from sim.core.timeseries import total_length, union_length
from sim.engine import live
from sim.engine.bill import PoolSpan, SpanUsage, compose, per_minute_fixed_usd
from sim.engine.censored import censored_quantile
from sim.engine.prefix_metrics import server_prefix_metrics
from sim.engine.recorder import Recorder
from workloads.generator import RequestGenerator


@dataclass
class ReplicationResult:
    replication: int
    metrics: dict[str, float | None]
    breakdown: dict[str, float | None] = field(default_factory=dict)
    timeseries: dict[str, np.ndarray] = field(default_factory=dict)
    hourly: dict[str, list[float | None]] = field(default_factory=dict)
    histograms: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, np.ndarray] | None = None
    num_events: int = 0
    wall_s: float = 0.0


class Replication:
    def __init__(self, exp: Experiment, replication: int):
        self.exp = exp
        self.rep = replication
        self.horizon_s = exp.horizon_h * HOUR_S
        self.env = simpy.Environment()
        self.recorder = Recorder(exp, self.horizon_s)
        self.generator = RequestGenerator(exp, replication)
        self.cache = ResponseCache(exp.cache.response) if exp.cache.response.enabled else None
        seed = exp.seed
        cif = exp.cache.prompt.cached_input_fraction
        self.apis: list[ApiBackend] = []
        for i, (name, spec) in enumerate([("api", exp.backends.api), *sorted(exp.backends.apis.items())]):
            sub = 0 if i == 0 else name_key(name)
            self.apis.append(
                ApiBackend(
                    name,
                    i,
                    spec,
                    cif,
                    stream(seed, replication, "api", sub),
                    stream(seed, replication, "batch_delay", sub),
                    stream(seed, replication, "outages", sub),
                    self.horizon_s,
                )
            )
        classes = exp.workload.classes
        used = Router.pools_used(exp)
        # a pool's streams are keyed by its name; the shorthand's pool (named gpu) keeps the unnamed ones
        self.pools: list[GpuPool | None] = [
            GpuPool(
                self.env,
                spec,
                [c.priority for c in classes],
                [c.timeout_s for c in classes],
                stream(seed, replication, "cold_start", _pool_key(name)),
                self.horizon_s,
                self._block_finished,
                rng_failures=stream(seed, replication, "failures", _pool_key(name)),
                warmup_s=exp.warmup_h * HOUR_S,
                role=exp.backends.pool_role(name),
            )
            if name in used
            else None
            for name, spec in exp.backends.pools().items()
        ]
        self.pool = self.pools[0]
        connect_pools(exp.backends, self.pools, self.env, [c.priority for c in classes])
        self.router = Router(exp, self.env, self.pools, self.apis, replication=replication, response_cache=self.cache)
        self.live: dict[int, RequestBlock] = {}
        self.recorder.live_blocks = self.live.values
        self.recorder.settled_before = self._settled_before

    def run(self) -> ReplicationResult:
        started = time.perf_counter()
        blocks = self.generator.blocks()
        self._load(blocks)
        # in steps, so that progress can be told (stopping at a time changes no event's order)
        steps = live.num_steps(self.exp.horizon_h)
        for k in range(1, steps + 1):
            self.env.run(until=self.horizon_s * k / steps)
            live.report(self.rep, k / steps)
        self.router.close(self.horizon_s)
        for pool in self.pools:
            if pool is not None:
                pool.close(self.horizon_s)
        pending = [b for b in self.live.values() if b.pending > 0]
        self.recorder.flush(pending)
        result = self._result()
        result.wall_s = time.perf_counter() - started
        return result

    def _load(self, blocks: Any) -> None:
        block = next(blocks, None)
        if block is None:
            return
        self.live[block.index] = block
        hits = None
        if self.cache is not None and block.prompt_id is not None and len(block):
            hits = self.cache.lookup_block(block.prompt_id, block.arrival_at)
        self.router.route_block(block, hits, self._block_finished)
        if block.end_s < self.horizon_s:
            ev = simpy.Timeout(self.env, block.end_s - self.env.now)
            ev.callbacks.append(lambda _e: self._load(blocks))

    def _settled_before(self) -> float:
        """Every request end before this time is written into its block (a drop at a deadline and a lazily
        resolved API attempt may be written after their time; everything else is written at its time)."""
        t = min(self.env.now, self.router.dispatch.settled_before())
        for pool in self.pools:
            if pool is not None:
                t = min(t, pool.settled_before())
        return t

    def _block_finished(self, block: RequestBlock) -> None:
        self.live.pop(block.index, None)
        self.recorder.block_done(block)

    # -- metrics ---------------------------------------------------------------------------
    def _result(self) -> ReplicationResult:
        exp, rec = self.exp, self.recorder
        c = rec.counts
        lo, hi = rec.warmup_s, self.horizon_s
        pools = [
            (name, spec, pool)
            for (name, spec), pool in zip(exp.backends.pools().items(), self.pools, strict=True)
            if pool is not None
        ]
        paid_s = sum(total_length(pool.ledger.provisioned_intervals, lo, hi) for _, _, pool in pools)
        busy_s = sum(pool.ledger.busy.total_length() for _, _, pool in pools)
        work_s = sum(pool.ledger.work_s for _, _, pool in pools)
        gpu_util: float | None = busy_s / paid_s if pools and paid_s > 0 else None
        gpu_cap_util: float | None = work_s / paid_s if pools and paid_s > 0 else None
        bill = compose(
            exp,
            SpanUsage(
                lo,
                hi,
                c["requests"],
                rec.sums["cost_api"],
                c["tokens_out"],
                tuple(
                    PoolSpan(name, server_price(spec).usd_per_hour, pool.ledger.provisioned_intervals)
                    for name, spec, pool in pools
                ),
            ),
        )
        pool_parts = {k: bill.pop(k) for k in [k for k in bill if ".pool." in k]}
        cost_total, cost_gpu, cost_fixed = bill["cost_total_usd"], bill["cost_gpu_usd"], bill["cost_fixed_usd"]
        tokens = c["tokens_in"] + c["tokens_out"]
        requests = c["requests"]
        uptime = union_length(self.router.up_intervals(self.horizon_s), lo, hi) / (hi - lo)
        # latency percentiles count requests without an answer (right-censored, sim.censored)
        quantiles = {
            "ttft_p50_s": censored_quantile(rec.ttft, rec.unserved, 0.5),
            "ttft_p95_s": censored_quantile(rec.ttft, rec.unserved, 0.95),
            "ttft_p99_s": censored_quantile(rec.ttft, rec.unserved, 0.99),
            "e2e_p50_s": censored_quantile(rec.e2e, rec.unserved, 0.5),
            "e2e_p95_s": censored_quantile(rec.e2e, rec.unserved, 0.95),
            "e2e_p99_s": censored_quantile(rec.e2e, rec.unserved, 0.99),
            # undefined when the measured window holds no whole peak hour (a short horizon)
            "peak_ttft_p95_s": (
                censored_quantile(rec.peak_ttft, rec.peak_unserved, 0.95) if rec.peak_covered else (None, False)
            ),
        }
        # in flight at the horizon: left out of availability unless waiting longer than its class's TTFT SLO
        finished = requests - c["in_flight"] + c["overdue"]
        metrics: dict[str, float | None] = {
            "requests": requests,
            "served": c["served"],
            "failed": c["failed"],
            "dropped": c["dropped"],
            "in_flight": c["in_flight"],
            "in_flight_at_horizon": c["in_flight"],
            "cache_hits": c["cache_hits"],
            "served_by_api": c["served_by_api"],
            "served_by_gpu": c["served_by_gpu"],
            "tokens_in": c["tokens_in"],
            "tokens_out": c["tokens_out"],
            "ttft_mean_s": rec.ttft.mean,
            "ttft_p50_s": quantiles["ttft_p50_s"][0],
            "ttft_p95_s": quantiles["ttft_p95_s"][0],
            "ttft_p99_s": quantiles["ttft_p99_s"][0],
            "e2e_mean_s": rec.e2e.mean,
            "e2e_p50_s": quantiles["e2e_p50_s"][0],
            "e2e_p95_s": quantiles["e2e_p95_s"][0],
            "e2e_p99_s": quantiles["e2e_p99_s"][0],
            "tpot_mean_s": rec.sums["tpot"] / c["tpot_n"] if c["tpot_n"] else None,
            "queue_wait_mean_s": rec.sums["queue_wait"] / c["queue_wait_n"] if c["queue_wait_n"] else None,
            "peak_ttft_p95_s": quantiles["peak_ttft_p95_s"][0],
            "peak_concurrency": rec.concurrency.peak,
            "gpu_utilization": gpu_util,
            "gpu_capacity_utilization": gpu_cap_util,
            "preemptions": sum(pool.ledger.preemptions for _, _, pool in pools),
            "escalated_requests": int(rec.escalated_by_class.sum()),
            "availability": c["served"] / finished if finished else None,
            "uptime": uptime,
            "slo_attainment": c["slo_met"] / requests if requests else None,
            "cost_per_1k_tokens_usd": cost_total / tokens * 1000.0 if tokens else None,
        }
        metrics.update(bill)
        metrics.update(rec.hybrid.metrics(requests, c["cache_hits"]))
        for name, (_, censored) in quantiles.items():
            metrics[f"{name}.censored"] = int(censored)
        breakdown: dict[str, float | None] = {}
        for name, v in zip(rec.class_names, rec.cost_by_class.tolist(), strict=True):
            breakdown[f"cost_api_usd.class.{name}"] = v
        for name, v in rec.cost_by_path.items():
            breakdown[f"cost_api_usd.path.{name}"] = v
        for name, r, s in zip(
            rec.class_names, rec.requests_by_class.tolist(), rec.served_by_class.tolist(), strict=True
        ):
            breakdown[f"requests.class.{name}"] = r
            breakdown[f"served.class.{name}"] = s
        if exp.routing.escalate:
            for name, e in zip(rec.class_names, rec.escalated_by_class.tolist(), strict=True):
                breakdown[f"escalated_requests.class.{name}"] = e
        breakdown.update(rec.hybrid.breakdown(rec.cost_by_class, cost_gpu, cost_fixed + bill["cost_tco_usd"]))
        if exp.backends.gpu_pools:
            breakdown.update(pool_parts)
            breakdown.update(_pool_metrics(rec, pools, lo, hi))
        breakdown.update(server_prefix_metrics([(name, pool) for name, _, pool in pools], bool(exp.backends.gpu_pools)))
        n_min = rec.num_minutes
        busy = np.zeros(n_min)
        healthy = np.zeros(n_min)
        capacity_used = np.zeros(n_min)
        gpu_spend = np.zeros(n_min)
        per_pool: dict[str, np.ndarray] = {}
        for name, spec, pool in pools:
            from sim.core.timeseries import LevelSeries

            lh, lp = LevelSeries(n_min), LevelSeries(n_min)
            if pool.ledger.healthy_intervals:
                a = np.array(pool.ledger.healthy_intervals)
                lh.add(a[:, 0], a[:, 1])
            if pool.ledger.provisioned_intervals:
                a = np.array(pool.ledger.provisioned_intervals)
                lp.add(a[:, 0], a[:, 1])
            p_busy, p_healthy = pool.ledger.busy.minute_means(n_min), lh.minute_means()
            p_spend = lp.minute_means() * server_price(spec).usd_per_hour / 60.0
            busy, healthy = busy + p_busy, healthy + p_healthy
            capacity_used = capacity_used + np.asarray(pool.ledger.work_by_minute[:n_min], dtype=np.float64) / 60.0
            gpu_spend = gpu_spend + p_spend
            if exp.backends.gpu_pools:
                per_pool[f"busy_servers.pool.{name}"] = p_busy
                per_pool[f"healthy_servers.pool.{name}"] = p_healthy
                per_pool[f"provisioned_servers.pool.{name}"] = lp.minute_means()
                per_pool[f"capacity_used_servers.pool.{name}"] = (
                    np.asarray(pool.ledger.work_by_minute[:n_min], dtype=np.float64) / 60.0
                )
                per_pool[f"spend_usd.pool.{name}"] = p_spend
        timeseries = (
            {
                "minute": np.arange(n_min, dtype=np.int64),
                "arrivals": rec.arrivals,
                "in_flight": rec.in_flight.minute_means(),
                "queue_len": rec.queue.minute_means(),
                "busy_servers": busy,
                "healthy_servers": healthy,
                # servers' worth of work in full batches (gpu_capacity_utilization per minute; see docs/metrics.md)
                "capacity_used_servers": capacity_used,
                "spend_usd": rec.api_spend + gpu_spend + per_minute_fixed_usd(exp),
                **per_pool,
            }
            if exp.output.timeseries
            else {}
        )
        hourly: dict[str, list[float | None]] = {
            f"{kind}_p{round(q * 100)}_s": [
                censored_quantile(h, u, q)[0] for h, u in zip(hists, rec.unserved_by_hour, strict=True)
            ]
            for kind, hists in (("ttft", rec.ttft_by_hour), ("e2e", rec.e2e_by_hour))
            for q in (0.5, 0.95, 0.99)
        }
        hourly["requests"] = [float(h.count) for h in rec.ttft_by_hour]
        requests_cols = None
        if rec.request_rows:
            requests_cols = {k: np.concatenate([r[k] for r in rec.request_rows]) for k in rec.request_rows[0]}
        return ReplicationResult(
            replication=self.rep,
            metrics=metrics,
            breakdown=breakdown,
            timeseries=timeseries,
            hourly=hourly,
            histograms={"ttft_s": rec.ttft.to_dict(), "e2e_s": rec.e2e.to_dict()},
            requests=requests_cols,
            num_events=self.router.num_events + sum(pool.ledger.num_events for _, _, pool in pools),
        )


def _pool_metrics(
    rec: Recorder, pools: list[tuple[str, GpuPoolSpec, GpuPool]], lo: float, hi: float
) -> dict[str, float | None]:
    """Each named pool's utilization, capacity utilization, uptime, preemptions and request metrics, as
    `<metric>.pool.<name>` (the same definitions as the totals, over that pool alone)."""
    out: dict[str, float | None] = {}
    assert rec.pools is not None  # named pools have a tally
    index = {name: j for j, name in enumerate(rec.pools.names)}
    for name, _, pool in pools:
        paid_s = total_length(pool.ledger.provisioned_intervals, lo, hi)
        part: dict[str, float | None] = {
            "gpu_utilization": pool.ledger.busy.total_length() / paid_s if paid_s > 0 else None,
            "gpu_capacity_utilization": pool.ledger.work_s / paid_s if paid_s > 0 else None,
            "uptime": union_length(pool.ledger.healthy_intervals, lo, hi) / (hi - lo),
            "preemptions": pool.ledger.preemptions,
            "server_hours": paid_s / HOUR_S,
            **rec.pools.metrics(index[name]),
        }
        out.update({f"{k}.pool.{name}": v for k, v in part.items()})
    return out


def _pool_key(name: str) -> int:
    return 0 if name == SHORTHAND_POOL else name_key(name)


def simulate(exp: Experiment, replication: int) -> ReplicationResult:
    """Run one replication of an experiment (a pure function of the config and the replication index)."""
    bound_heap_growth()
    return Replication(exp, replication).run()
