"""`limits:` how much work and memory a run would take, estimated from the config and checked against the
caps of `limits` (sim.config.limits) before anything runs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.core.calendar import DAY_S, HOUR_S

if TYPE_CHECKING:
    from sim.config.experiment import Experiment


EVENTS_PER_REQUEST = 4.0  # arrival, admission, first token, completion (pre-generated, callbacks)


EVENTS_PER_FAILURE = 3.0  # failure, repair, end of the cold start


EVENTS_PER_OUTAGE = 2.0  # start and end of an API outage


EVENTS_PER_REPLICATION = 1.0e4  # set-up, summary, checkpoint of one replication (~0.1 s)


EVENTS_PER_POINT = 1.0e5  # a sweep point's results folder, summary and report (~1 s)


BYTES_PER_REQUEST = 140.0  # a pre-generated request: times, sizes, class, cache key (measured: 1e8 -> 14 GB)


BYTES_PER_CACHE_ENTRY = 150.0


BYTES_PER_SWEEP_POINT = 3.0e3  # a derived experiment and its folder entry (measured: 1e6 points -> 2.8 GB)


MIN_BLOCK_S = 60.0  # the shortest generation block (workloads.generator)


BLOCK_REQUESTS = 50_000.0  # the generator's target block size (workloads.generator.TARGET_BLOCK_REQUESTS)


@dataclass
class RunEstimate:
    """Terms of the estimate: (dotted key that drives it, what it counts, amount)."""

    events: list[tuple[str, str, float]] = field(default_factory=list)
    memory_bytes: list[tuple[str, str, float]] = field(default_factory=list)
    requests_per_replication: float = 0.0

    @property
    def total_events(self) -> float:
        return math.fsum(t[2] for t in self.events)

    @property
    def peak_memory_bytes(self) -> float:
        return math.fsum(t[2] for t in self.memory_bytes)


def dist_mean(spec: Any) -> float | None:
    """Mean of a distribution spec (None where it needs a file)."""
    d = spec.dist
    if d == "constant":
        return float(spec.value)
    if d in ("exponential", "geometric", "gamma"):
        return float(spec.mean)
    if d == "lognormal":
        expo = spec.sigma**2 / 2.0
        return math.inf if expo > 700 else float(spec.median) * math.exp(expo)
    if d == "uniform":
        return (spec.low + spec.high) / 2.0
    if d == "pareto":
        return float(spec.scale) * spec.alpha / (spec.alpha - 1.0)
    return None


def _peak_factor(exp: Experiment) -> float:
    """Rough upper bound of the rate's maximum over its mean (for the size of one generation block)."""
    arr = exp.workload.arrivals
    f = 1.0
    if arr.kind == "diurnal":
        f = arr.peak_to_mean
    elif arr.kind == "hourly" and arr.multipliers is not None:
        f = max(arr.multipliers) / max(math.fsum(arr.multipliers) / len(arr.multipliers), 1e-300)
    elif arr.kind in ("hourly", "profile"):
        f = 5.0
    if arr.day_factors is not None:
        f *= max(1.0, max(arr.day_factors))
    elif arr.kind != "constant":
        f *= max(1.0, arr.weekend_factor)
    if arr.overdispersion is not None:
        f *= 1.0 + 3.0 * (arr.overdispersion.cv or 1.0)
    return f


def _burst_terms(exp: Experiment, horizon_s: float) -> tuple[float, float, str]:
    """(expected burst requests per replication, largest occurrence, key of the largest burst)."""
    total, largest, key = 0.0, 0.0, "workload.arrivals.bursts"
    if not exp.workload.arrivals.bursts:
        return total, largest, key
    from workloads.bursts import burst_days  # numpy (its module's rate curves): only with bursts

    weekdays = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    start = weekdays.index(exp.start_weekday)
    n_days = math.ceil(horizon_s / DAY_S) + 1
    for i, b in enumerate(exp.workload.arrivals.bursts):
        days = burst_days(b)
        occurrences = sum(1 for d in range(-1, n_days) if (start + d) % 7 in days and d * DAY_S < horizon_s)
        size = float(b.count) if b.count is not None else float(b.rate_rps or 0.0) * 2.0 * b.half_width_s
        total += occurrences * size
        if occurrences and size > largest:
            largest = size
            key = f"workload.arrivals.bursts.{i}.{'count' if b.count is not None else 'rate_rps'}"
    return total, largest, key


def _trace_rate(exp: Experiment, base_dir: Path | None, horizon_s: float) -> tuple[float, str]:
    """(requests per replication, key) of a trace replay; its file was checked before."""
    from workloads.trace import load_trace

    arr = exp.workload.arrivals
    trace = load_trace(arr, base_dir)
    n = trace.size
    if not arr.loop:
        times = trace.times / arr.speed
        return float(min(n, int((times < horizon_s).sum()))), "workload.arrivals.speed"
    period = trace.duration_s * n / (n - 1) / arr.speed
    return n * horizon_s / period, "workload.arrivals.loop"


def estimate_run(exp: Experiment, base_dir: Path | None = None, points: float = 1.0) -> RunEstimate:
    """Events and peak memory of the whole run; `points` sweep points share one point's estimate."""
    est = RunEstimate()
    horizon_s = exp.horizon_h * HOUR_S
    reps = float(exp.replications)
    arr = exp.workload.arrivals
    runs = reps * points  # replications over every sweep point

    if arr.kind == "trace":
        per_rep, key = _trace_rate(exp, base_dir, horizon_s)
        mean_rate = per_rep / horizon_s
        peak_rate = mean_rate
    else:
        factor = 1.0 if arr.kind == "constant" else max(1.0, arr.weekend_factor)
        if arr.day_factors is not None:
            factor = max(1.0, max(arr.day_factors))
        wl = exp.workload
        growth = wl.scale * max(1.0, (1.0 + wl.growth_per_month) ** (exp.horizon_h / 730.0))  # workloads.growth
        mean_rate = arr.mean_rps * factor * growth
        per_rep, key = mean_rate * horizon_s, "workload.arrivals.mean_rps"
        peak_rate = arr.mean_rps * _peak_factor(exp) * growth
    est.events.append((key, "requests", runs * per_rep * EVENTS_PER_REQUEST))

    bursts, largest_burst, burst_key = _burst_terms(exp, horizon_s)
    if bursts:
        est.events.append((burst_key, "burst requests", runs * bursts * EVENTS_PER_REQUEST))
        est.memory_bytes.append((burst_key, "the largest burst occurrence", largest_burst * BYTES_PER_REQUEST))
    est.requests_per_replication = per_rep + bursts

    block = max(min(BLOCK_REQUESTS, per_rep), peak_rate * min(MIN_BLOCK_S, horizon_s))
    est.memory_bytes.append((key, "one generation block of requests", block * BYTES_PER_REQUEST))

    for name, pool in exp.backends.pools().items():
        where = exp.backends.pool_key(name)
        fails = pool.failures
        if fails.mtbf_h is not None:
            servers = max(
                [pool.servers, pool.autoscaler.max_servers if pool.autoscaler.enabled else 0, *(pool.schedule or [])]
            )
            cycles = servers * horizon_s / ((fails.mtbf_h + fails.mttr_h) * HOUR_S)
            key = f"{where}.failures.mtbf_h" if fails.mtbf_h <= fails.mttr_h else f"{where}.failures.mttr_h"
            est.events.append((key, "server failure/repair cycles", runs * cycles * EVENTS_PER_FAILURE))
        auto = pool.autoscaler
        if auto.enabled:
            evals = horizon_s / auto.evaluate_every_s
            est.events.append((f"{where}.autoscaler.evaluate_every_s", "autoscaler evaluations", runs * evals))
    apis = [("backends.api", exp.backends.api), *((f"backends.apis.{k}", v) for k, v in exp.backends.apis.items())]
    for where, api in apis:
        if api.outages.mtbf_h is not None:
            cycles = horizon_s / ((api.outages.mtbf_h + api.outages.mttr_h) * HOUR_S)
            which = "mtbf_h" if api.outages.mtbf_h <= api.outages.mttr_h else "mttr_h"
            est.events.append((f"{where}.outages.{which}", "API outages", runs * cycles * EVENTS_PER_OUTAGE))
    est.events.append(("horizon_h", "timeseries minutes", runs * math.ceil(horizon_s / 60.0)))
    est.events.append(("replications", "replications", runs * EVENTS_PER_REPLICATION))
    if points > 1:
        est.events.append(("sweep", "sweep points", points * EVENTS_PER_POINT))
        est.memory_bytes.append(("sweep", "the sweep grid", points * BYTES_PER_SWEEP_POINT))

    rc = exp.cache.response
    if rc.enabled:
        entries = min(rc.capacity, rc.distinct_prompts, est.requests_per_replication)
        est.memory_bytes.append(("cache.response.capacity", "response cache entries", entries * BYTES_PER_CACHE_ENTRY))
    return est


def _g(x: float) -> str:
    return f"{x:.3g}"


def _terms(terms: list[tuple[str, str, float]], unit: str, scale: float = 1.0) -> str:
    top = sorted(terms, key=lambda t: -t[2])[:3]
    return "; ".join(f"{what} {_g(v / scale)}{unit} ({key})" for key, what, v in top if v > 0)


def _raise_hint(key: str, value: float) -> str:
    return f" or raise the cap (--set {key}={_g(value * 1.01)})" if math.isfinite(value) else ""


def sweep_points(exp: Experiment) -> float:
    """Points of the grid (the product of the value counts), without building it."""
    return float(math.prod(len(v) for v in exp.sweep.values())) if exp.sweep else 1.0


def limit_problems(
    exp: Experiment, base_dir: Path | None = None, worst_point: Experiment | None = None
) -> list[tuple[str, str]]:
    """(dotted path, message) for every cap the run exceeds; a sweep is sized as points x its worst point."""
    lim = exp.limits
    out: list[tuple[str, str]] = []
    points = sweep_points(exp)
    est = estimate_run(worst_point or exp, base_dir, points)
    events, memory = est.total_events, est.peak_memory_bytes
    if not events <= lim.max_events:
        key = max(est.events, key=lambda t: t[2])[0]
        out.append(
            (
                key,
                f"this run would take about {_g(events)} simulation events ({_terms(est.events, '')}; "
                f"x {exp.replications} replications"
                + (f" x {_g(points)} sweep points" if points > 1 else "")
                + f" included), above limits.max_events = {_g(lim.max_events)}; shrink the run"
                + _raise_hint("limits.max_events", events),
            )
        )
    if not memory <= lim.max_memory_gb * 1e9:
        key = max(est.memory_bytes, key=lambda t: t[2])[0]
        out.append(
            (
                key,
                f"this run would hold about {_g(memory / 1e9)} GB at once ({_terms(est.memory_bytes, ' GB', 1e9)}), "
                f"above limits.max_memory_gb = {_g(lim.max_memory_gb)}; shrink it"
                + _raise_hint("limits.max_memory_gb", memory / 1e9),
            )
        )
    total = est.requests_per_replication * exp.replications
    if exp.output.requests and not total <= lim.max_request_rows:
        out.append(
            (
                "output.requests",
                f"requests.parquet would hold about {_g(total)} rows, above limits.max_request_rows = "
                f"{_g(lim.max_request_rows)}; set output.requests: false or raise the cap",
            )
        )
    if exp.output.timeseries:
        rows = exp.replications * math.ceil(exp.horizon_h * 60.0)
        if rows > lim.max_timeseries_rows:
            out.append(
                (
                    "output.timeseries",
                    f"timeseries.parquet would hold {_g(rows)} rows (replications x simulated minutes), above "
                    f"limits.max_timeseries_rows = {_g(lim.max_timeseries_rows)}; set output.timeseries: false "
                    "or raise the cap",
                )
            )
    for i, cls in enumerate(exp.workload.classes):
        for key in ("input_tokens", "output_tokens"):
            mean = dist_mean(getattr(cls, key))
            if mean is not None and mean > lim.max_mean_tokens:
                out.append(
                    (
                        f"workload.classes.{i}.{key}",
                        f"mean of {_g(mean)} tokens per request is above limits.max_mean_tokens = "
                        f"{_g(lim.max_mean_tokens)}",
                    )
                )
    return out
