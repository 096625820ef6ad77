"""`limits:` caps on how much work and memory one run may ask for, checked before anything runs.

Every field of every model is bounded, but bounded fields still multiply into absurd runs
(`mean_rps: 1.0e6` for a year, a million times). These checks estimate the size of a run from the config
alone and refuse it with a located message that names the key to raise; a user who means it writes e.g.
`--set limits.max_requests=1e11`. The estimates are upper bounds (see docs/config.md, "limits").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from sim.config.base import Frozen

if TYPE_CHECKING:
    from sim.config.experiment import Experiment


class LimitsSpec(Frozen):
    # expected requests over all replications: at ~50-100k simulated requests/s per core, 5e9 is about a day
    max_requests: Annotated[float, Field(gt=0, le=1.0e15)] = 5.0e9
    # rows of requests.parquet (output.requests: true), held one replication at a time
    max_request_rows: Annotated[float, Field(gt=0, le=1.0e12)] = 1.0e8
    # rows of timeseries.parquet: replications x simulated minutes
    max_timeseries_rows: Annotated[float, Field(gt=0, le=1.0e12)] = 1.0e8
    # entries the response cache may hold at once (~150 bytes each)
    max_cache_entries: Annotated[float, Field(gt=0, le=1.0e12)] = 5.0e7
    # mean of a class's token-count distribution (input or output); beyond it sums risk int64 overflow
    max_mean_tokens: Annotated[float, Field(gt=0, le=1.0e12)] = 1.0e7


def expected_requests_per_replication(exp: Experiment) -> float | None:
    """Upper bound on the expected number of arrivals in one replication (None for trace replay)."""
    arr = exp.workload.arrivals
    if arr.kind == "trace":
        return None
    factor = 1.0 if arr.kind == "constant" else max(1.0, arr.weekend_factor)
    return arr.mean_rps * exp.horizon_h * 3600.0 * factor


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


def _g(x: float) -> str:
    return f"{x:.3g}"


def limit_problems(exp: Experiment) -> list[tuple[str, str]]:
    """(dotted path, message) for every cap the config exceeds."""
    lim = exp.limits
    out: list[tuple[str, str]] = []
    per_rep = expected_requests_per_replication(exp)
    if per_rep is not None:
        total = per_rep * exp.replications
        if total > lim.max_requests:
            out.append(
                (
                    "workload.arrivals.mean_rps",
                    f"this run would simulate about {_g(total)} requests (mean_rps {_g(exp.workload.arrivals.mean_rps)}"
                    f" x {_g(exp.horizon_h)} h x {exp.replications} replications), above limits.max_requests = "
                    f"{_g(lim.max_requests)}; shrink the run or raise the cap "
                    f"(--set limits.max_requests={_g(total * 1.01)})",
                )
            )
        if exp.output.requests and total > lim.max_request_rows:
            out.append(
                (
                    "output.requests",
                    f"requests.parquet would hold about {_g(total)} rows, above limits.max_request_rows = "
                    f"{_g(lim.max_request_rows)}; set output.requests: false or raise the cap",
                )
            )
        rc = exp.cache.response
        if rc.enabled:
            entries = min(rc.capacity, rc.distinct_prompts, per_rep)
            if entries > lim.max_cache_entries:
                out.append(
                    (
                        "cache.response.capacity",
                        f"the response cache could hold {_g(entries)} entries (~{_g(entries * 150 / 1e9)} GB), above "
                        f"limits.max_cache_entries = {_g(lim.max_cache_entries)}; lower it or raise the cap",
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
