"""The bill: what the simulated span cost, and what a calendar month of the workload's own calendar costs.

Every component is priced one of two ways (docs/metrics.md, "The monthly bill"):

* usage-priced (follows the volume): API tokens (every provider, cached input, batch API), egress. The month's
  usage = the span's usage per request x the workload's expected requests in a month of its own calendar:
  `costs.hours_per_month` / 168 weeks, each week the rate curve's exact integral (mean_rps x 86,400 s x the
  sum of the seven day factors: weekend_factor, day_factors, or 7 for hour-of-week shapes and constant rates)
  plus the expected burst requests of a week. The span's realised request count is the denominator, so the
  month is the simulated requests' mean bill at the calendar's expected volume. Trace replays have no
  calendar: their usage scales by hours (hours_per_month / measured hours).
* time-priced (follows the clock): GPU server-hours, spare servers, fixed monthly costs. Server-hours: the
  mean provisioned servers of each weekday the span covers (all of it or part), weighted by its days in a month
  (hours_per_month / 168 of each weekday); a weekday the span does not cover takes the mean of the covered days
  of its kind (Monday-Friday or Saturday-Sunday), else of the whole span. A fixed pool is therefore exactly
  servers x price x hours_per_month; an autoscaled pool is billed its own weekday and weekend provisioning when
  the span holds both kinds. Fixed monthly costs are charged whole, in their scope.

Scopes: `self_hosted` costs are charged only when a GPU pool is provisioned (`gpu_provisioned`), `always`
costs to every run. `costs.fixed_monthly_usd` is self-hosting overhead unless `costs.fixed_scope: always`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from backends.gpu.catalog import model_of, server_price
from sim.config import Experiment
from sim.config.backends import GpuPoolSpec
from sim.core.calendar import DAY_S, HOUR_S, WEEKDAYS
from sim.core.timeseries import total_length

HOURS_PER_WEEK = 168.0
TCO_COMPONENTS = ("operations", "engineers", "monitoring", "storage", "egress", "redundancy")
# the stacked bar: every part of monthly_cost_usd, in this order
MONTH_PARTS = ("api", "gpu", "fixed", *TCO_COMPONENTS)


def used_pools(exp: Experiment) -> dict[str, GpuPoolSpec]:
    """The GPU pools some route sends requests to, by name in the config's order (only these are paid)."""
    from backends.routing.router import Router

    used = Router.pools_used(exp)
    return {name: spec for name, spec in exp.backends.pools().items() if name in used}


def gpu_provisioned(exp: Experiment) -> bool:
    """Whether the run provisions a GPU pool: a GPU path in the routing and servers to put on it."""
    for spec in used_pools(exp).values():
        has_schedule = spec.schedule is not None and max(spec.schedule) > 0
        if spec.servers > 0 or has_schedule or spec.autoscaler.enabled:
            return True
    return False


def first_pool(exp: Experiment) -> GpuPoolSpec:
    """The pool whose server price prices spare servers (N+1): the first used one, else the first."""
    return next(iter(used_pools(exp).values()), next(iter(exp.backends.pools().values())))


def in_scope(exp: Experiment, scope: str) -> bool:
    return scope == "always" or gpu_provisioned(exp)


# ------------------------------------------------------------------------------------------- volume


def uses_calendar(exp: Experiment) -> bool:
    """False for trace replays (no rate curve: usage scales by hours)."""
    return exp.workload.arrivals.kind != "trace"


def requests_per_week_per_rps(exp: Experiment) -> float:
    """Expected requests of the rate curve in one week per unit of mean_rps (exact: each day integrates to
    86,400 s x its factor; hour-of-week shapes and constant rates have factor 1 on every day)."""
    return DAY_S * math.fsum(exp.workload.arrivals.weekday_factors().tolist())


def burst_requests_per_week(exp: Experiment) -> float:
    from workloads.bursts import expected_per_week

    return expected_per_week(exp.workload.arrivals.bursts)


def month_requests(exp: Experiment) -> float:
    """Expected requests in a calendar month (costs.hours_per_month) of the workload's calendar."""
    weeks = exp.costs.hours_per_month / HOURS_PER_WEEK
    a = exp.workload.arrivals
    level = _growth_level(exp)
    return weeks * level * (float(a.mean_rps) * requests_per_week_per_rps(exp) + burst_requests_per_week(exp))


def _growth_level(exp: Experiment) -> float:
    """workload.scale times the mean growth factor over the measured span (workloads.growth): a month at
    the level the simulated span runs at."""
    from workloads.growth import mean_factor

    return mean_factor(exp.workload, exp.warmup_h * HOUR_S, exp.horizon_h * HOUR_S)


def span_requests(exp: Experiment) -> float:
    """Expected requests arriving in the measured span [warmup, horizon) (the rate curve the run draws from,
    plus the bursts' expected share inside)."""
    from workloads.bursts import expected_in
    from workloads.shapes import build_rate_curve

    horizon_s = exp.horizon_h * HOUR_S
    lo = exp.warmup_h * HOUR_S
    from workloads.growth import grown

    a = exp.workload.arrivals
    curve = grown(build_rate_curve(a, exp.start_weekday, horizon_s), exp.workload)
    bursts = expected_in(a.bursts, exp.start_weekday, lo, horizon_s) * _growth_level(exp)
    return curve.total(lo, horizon_s) + bursts


def rate_for_month_requests(exp: Experiment, requests: float) -> float:
    """The mean_rps whose calendar month holds `requests` expected requests (bursts are not scaled)."""
    weeks = exp.costs.hours_per_month / HOURS_PER_WEEK * _growth_level(exp)
    per_rps = weeks * requests_per_week_per_rps(exp)
    rest = requests - weeks * burst_requests_per_week(exp)
    if per_rps <= 0 or rest < 0:
        raise ValueError("the volume is below what the workload's bursts alone bring in a month")
    return rest / per_rps


# ------------------------------------------------------------------------------------ composition


def _kind(d: int) -> int:
    return 0 if d < 5 else 1


def month_composition(exp: Experiment) -> dict[str, Any]:
    """How a month of this workload is composed from the simulated span (written to summary.json)."""
    hpm = exp.costs.hours_per_month
    lo, hi = exp.warmup_h * HOUR_S, exp.horizon_h * HOUR_S
    covered = _covered_seconds(exp, lo, hi)
    stands: dict[str, str] = {}
    for d, name in enumerate(WEEKDAYS):
        if covered[d] > 0:
            stands[name] = f"simulated ({covered[d] / HOUR_S:g} h of the span)"
            continue
        same = [WEEKDAYS[k] for k in range(7) if covered[k] > 0 and _kind(k) == _kind(d)]
        servers = "+".join(same) if same else "the whole span"
        stands[name] = f"not simulated: usage by its day factor, servers as on {servers}"
    price = server_price(first_pool(exp))
    out: dict[str, Any] = {
        "hours_per_month": hpm,
        "weeks_per_month": hpm / HOURS_PER_WEEK,
        "days_of_each_weekday": hpm / HOURS_PER_WEEK,
        "measured_span_h": (hi - lo) / HOUR_S,
        "start_weekday": exp.start_weekday,
        "weekday_stands_for": stands,
        "gpu_provisioned": gpu_provisioned(exp),
        "price_per_server_hour_usd": price.usd_per_hour,
        "price_source": price.source,
    }
    if exp.backends.gpu_pools:
        out["pools"] = {
            name: {"price_per_server_hour_usd": p.usd_per_hour, "price_source": p.source}
            for name, p in ((name, server_price(spec)) for name, spec in used_pools(exp).items())
        }
    if uses_calendar(exp):
        e_month, e_span = month_requests(exp), span_requests(exp)
        out.update(
            usage_basis="requests: the span's usage per request x the month's expected requests",
            day_factors=dict(zip(WEEKDAYS, exp.workload.arrivals.weekday_factors().tolist(), strict=True)),
            expected_requests_per_month=e_month,
            expected_requests_in_span=e_span,
            usage_factor_expected=e_month / e_span if e_span > 0 else None,
            formula=(
                f"usage: {hpm:g}/168 weeks x (mean_rps x 86400 s x sum(day factors) + burst requests per week)"
                " / the span's requests; time: sum over weekdays of mean provisioned servers x price x "
                f"{hpm:g}/168 x 24 h; fixed: monthly amounts in scope"
            ),
        )
    else:
        out.update(
            usage_basis="hours: a trace has no calendar; usage x hours_per_month / measured hours",
            usage_factor_expected=hpm / ((hi - lo) / HOUR_S),
        )
    return out


def _covered_seconds(exp: Experiment, lo: float, hi: float) -> list[float]:
    start = WEEKDAYS.index(exp.start_weekday)
    out = [0.0] * 7
    k = math.floor(lo / DAY_S)
    while k * DAY_S < hi:
        a, b = max(lo, k * DAY_S), min(hi, (k + 1) * DAY_S)
        if b > a:
            out[(start + k) % 7] += b - a
        k += 1
    return out


def month_server_hours(exp: Experiment, intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Server-hours provisioned in a calendar month, composed per weekday (see the module docstring)."""
    start = WEEKDAYS.index(exp.start_weekday)
    covered = [0.0] * 7
    paid = [0.0] * 7
    k = math.floor(lo / DAY_S)
    while k * DAY_S < hi:
        a, b = max(lo, k * DAY_S), min(hi, (k + 1) * DAY_S)
        if b > a:
            d = (start + k) % 7
            covered[d] += b - a
            paid[d] += total_length(intervals, a, b)
        k += 1
    total_cov, total_paid = sum(covered), sum(paid)
    servers = []
    for d in range(7):
        if covered[d] > 0:
            servers.append(paid[d] / covered[d])
            continue
        same = [k for k in range(7) if covered[k] > 0 and _kind(k) == _kind(d)]
        if same:
            servers.append(sum(paid[k] for k in same) / sum(covered[k] for k in same))
        else:
            servers.append(total_paid / total_cov if total_cov > 0 else 0.0)
    return exp.costs.hours_per_month * (math.fsum(servers) / 7.0)


# ------------------------------------------------------------------------------------------ the bill


@dataclass(frozen=True)
class PoolSpan:
    """One GPU pool's provisioned intervals and its price per server-hour."""

    name: str
    usd_per_hour: float
    provisioned: list[tuple[float, float]]


@dataclass(frozen=True)
class SpanUsage:
    """What one replication measured over [lo, hi)."""

    lo_s: float
    hi_s: float
    requests: int
    api_usd: float
    tokens_out: int
    pools: tuple[PoolSpan, ...]  # the provisioned GPU pools (none: no pool)


def storage_gb(exp: Experiment) -> float:
    st = exp.costs.tco.storage
    if st.gb is not None:
        return float(st.gb)
    specs = list(used_pools(exp).values()) or [first_pool(exp)]  # one copy of each used pool's model
    return math.fsum(model_of(spec).weight_bytes(spec.quantization) / 1e9 for spec in specs)


def monthly_fixed_parts(exp: Experiment) -> dict[str, float]:
    """The time-priced monthly amounts that do not depend on the run: fixed, operations, engineers,
    monitoring, storage (0 outside their scope)."""
    c, t = exp.costs, exp.costs.tco
    return {
        "fixed": c.fixed_monthly_usd if in_scope(exp, c.fixed_scope) else 0.0,
        "operations": t.operations.hours_per_month * t.operations.usd_per_hour
        if in_scope(exp, t.operations.scope)
        else 0.0,
        "engineers": t.engineers.fte * t.engineers.salary_usd_per_year / 12.0
        if in_scope(exp, t.engineers.scope)
        else 0.0,
        "monitoring": t.monitoring.monthly_usd if in_scope(exp, t.monitoring.scope) else 0.0,
        "storage": storage_gb(exp) * t.storage.usd_per_gb_month if in_scope(exp, t.storage.scope) else 0.0,
    }


def usage_factor(exp: Experiment, requests: int, measured_h: float) -> float:
    """Multiplier from the span's usage-priced cost to the month's."""
    if not uses_calendar(exp):
        return exp.costs.hours_per_month / measured_h
    if requests > 0:
        return month_requests(exp) / requests
    e_span = span_requests(exp)
    return month_requests(exp) / e_span if e_span > 0 else 0.0


def compose(exp: Experiment, span: SpanUsage) -> dict[str, float]:
    """Horizon and monthly cost metrics of one replication."""
    hpm = exp.costs.hours_per_month
    measured_h = (span.hi_s - span.lo_s) / HOUR_S
    price = server_price(first_pool(exp)).usd_per_hour
    prorate = measured_h / hpm
    t = exp.costs.tco
    # horizon and month, per pool; the totals are their exact (correctly rounded) sums
    pool_h = {p.name: total_length(p.provisioned, span.lo_s, span.hi_s) / HOUR_S * p.usd_per_hour for p in span.pools}
    pool_month = {
        p.name: month_server_hours(exp, p.provisioned, span.lo_s, span.hi_s) * p.usd_per_hour if p.provisioned else 0.0
        for p in span.pools
    }
    egress = (
        span.tokens_out * t.egress.bytes_per_token / 1e9 * t.egress.usd_per_gb if in_scope(exp, t.egress.scope) else 0.0
    )
    spare = t.redundancy.spare_servers * price if in_scope(exp, t.redundancy.scope) else 0.0
    fixed_month = monthly_fixed_parts(exp)
    horizon = {
        "api": span.api_usd,
        "gpu": math.fsum(pool_h.values()),
        "egress": egress,
        "redundancy": spare * measured_h,
        **{k: v * prorate for k, v in fixed_month.items()},
    }
    # month
    f = usage_factor(exp, span.requests, measured_h)
    month = {
        "api": span.api_usd * f,
        "gpu": math.fsum(pool_month.values()),
        "egress": egress * f,
        "redundancy": spare * hpm,
        **fixed_month,
    }
    tco_h = math.fsum(horizon[k] for k in TCO_COMPONENTS)
    total_h = horizon["api"] + horizon["gpu"] + horizon["fixed"] + tco_h
    out: dict[str, float] = {
        "cost_total_usd": total_h,
        "horizon_cost_usd": total_h,
        "cost_api_usd": horizon["api"],
        "cost_gpu_usd": horizon["gpu"],
        "cost_fixed_usd": horizon["fixed"],
        "cost_tco_usd": tco_h,
        "monthly_cost_usd": math.fsum(month[k] for k in MONTH_PARTS),
    }
    for k in MONTH_PARTS:
        out[f"cost_tco_{k}_monthly_usd"] = month[k]
    if exp.backends.gpu_pools:
        for name in pool_h:
            out[f"cost_gpu_usd.pool.{name}"] = pool_h[name]
            out[f"cost_gpu_monthly_usd.pool.{name}"] = pool_month[name]
    return out


def per_minute_fixed_usd(exp: Experiment) -> float:
    """Time-priced spend per simulated minute outside the GPU pool (fixed and TCO amounts, spare servers)."""
    t = exp.costs.tco
    price = server_price(first_pool(exp)).usd_per_hour
    spare = t.redundancy.spare_servers * price if in_scope(exp, t.redundancy.scope) else 0.0
    return (math.fsum(monthly_fixed_parts(exp).values()) / exp.costs.hours_per_month + spare) / 60.0
