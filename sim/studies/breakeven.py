"""`capsim breakeven`: API-only against self-hosted against hybrid, total monthly cost over token volumes.

Volume. A monthly token volume V (input + output tokens requested per month) is turned into a request rate
under the workload's own calendar (sim.bill): rate = (V / E[tokens per request] - a month's burst requests)
/ (costs.hours_per_month / 168 x 86,400 s x the sum of the seven day factors), with E[tokens per request] the
exact mean of the class mix (input + output). A weekday-only horizon therefore still bills a month with its
weekends, and the API-only month at volume V is V x the blended price per token. The shape of the day and
week (diurnal peak, hourly multipliers, weekend and day factors) is kept; only its level changes. Trace
arrivals cannot be scaled.

At each volume, on the same replication indices (common random numbers; costs are the means over the first
`--reps` replications, common to the three options, so their differences are paired):
  * API-only: `routing.policy: api_only`; charged only the costs of scope `always` (self-hosting costs,
    `costs.fixed_monthly_usd` by default and the TCO components of scope self_hosted, need a GPU pool).
  * self-hosted: `routing.policy: gpu_only`; the server count is the plan search (sim.plan) for the
    config's `plan.targets` at `plan.confidence`, galloping from the previous volume's answer (more volume
    never needs fewer servers); its cost includes the self-hosting costs (GPUs + operations + people + ...).
  * hybrid: the config's own routing when it already mixes (`by_class` or `overflow`); otherwise
    `overflow`: GPUs carry the load and requests spill to the API when the queue passes
    `routing.overflow.max_queue` per server. Server counts from the plan's answer upward (0 = all API) are
    screened on the first replications and the cheapest that meets the targets is confirmed by the plan's
    sequential rule; self-hosting costs apply when it runs at least one server. Both searches start from the
    previous volume's answer (more volume never needs fewer servers, nor makes fewer the cheaper choice).
The break-even volume is where self-hosted becomes cheaper than API-only, linearly interpolated between
the two volumes around the first sign change; its interval comes from the curves' uncertainty bands.
Naive sizing, for comparison: the average GPU-bound request rate over the throughput of one server at a
full batch (sim.studies.screens.server_capacity_rps), rounded up: no peak, no queueing, no SLO.

Named pools (backends.gpu_pools): breakeven sizes one of them, `pool` (`--pool`, default the first). The
self-hosted side sends every class to that pool (`by_class` to `gpu:<pool>`, no cascade, no by-size rule):
what serving everything from that pool would cost; the other pools are not reached, so not paid. The hybrid
side is the config's own routing (the fleet as configured: its other pools keep their servers, its APIs
their share), the sized pool's servers searched from 0. The API-only side is as for one pool. `routing.by_size`
rules are dropped on the API-only and self-hosted sides (they would send requests elsewhere).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.gpu.catalog import server_price
from backends.routing.registry import policy_of
from sim.config import Experiment
from sim.config.backends import GpuPoolSpec
from sim.core.stats import t_interval
from sim.engine.bill import MONTH_PARTS, month_requests, rate_for_month_requests, used_pools
from sim.engine.executor import Executor
from sim.engine.targets import meets_all
from sim.engine.variants import derive
from sim.studies.plan import Planner, PlanOptions, VaryRange
from sim.studies.screens import SERVERS_KEY, class_token_means, memory_problem, server_capacity_rps
from sim.studies.search import Space

_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}
_VOLUME = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*$")


def parse_volumes(text: str) -> list[float]:
    """'100M,500M,2B' -> [1e8, 5e8, 2e9] (suffixes K, M, B or G, T; plain numbers too), sorted."""
    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        m = _VOLUME.match(part)
        if not m:
            raise ValueError(f"--volumes: {part.strip()!r} is not a token volume (e.g. 100M, 2B, 5e8)")
        v = float(m.group(1)) * _SUFFIX[m.group(2).upper()]
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"--volumes: volumes must be > 0, got {part.strip()!r}")
        out.append(v)
    if not out:
        raise ValueError("--volumes: give at least one volume")
    return sorted(set(out))


def monthly_tokens(exp: Experiment) -> float:
    """Expected tokens requested in a calendar month of the workload's own calendar (sim.bill)."""
    e_in, e_out = class_token_means(exp)
    return month_requests(exp) * (e_in + e_out)


def rate_for_volume(exp: Experiment, volume: float) -> float:
    """The mean_rps whose calendar month (weekends and day factors included) requests `volume` tokens."""
    e_in, e_out = class_token_means(exp)
    return rate_for_month_requests(exp, volume / (e_in + e_out))


def naive_servers(exp: Experiment, pool: str | None = None) -> int:
    return max(1, math.ceil(exp.workload.arrivals.mean_rps / server_capacity_rps(exp, pool) - 1e-9))


def servers_key(pool: str | None) -> str:
    """The config key of the sized pool's server count (None: the shorthand backends.gpu_pool)."""
    return SERVERS_KEY if pool is None else f"backends.gpu_pools.{pool}.servers"


def self_hosted_changes(exp: Experiment, pool: str | None) -> list[tuple[str, Any]]:
    """The self-hosted side's routing: everything to the sized pool."""
    if pool is None:
        changes: list[tuple[str, Any]] = [("routing.policy", "gpu_only")]
    else:
        every = {c.name: f"gpu:{pool}" for c in exp.workload.classes}
        changes = [("routing.policy", "by_class"), ("routing.by_class", every), ("routing.escalate", {})]
    return changes + ([("routing.by_size", [])] if exp.routing.by_size else [])


def api_only_changes(exp: Experiment) -> list[tuple[str, Any]]:
    return [("routing.policy", "api_only")] + ([("routing.by_size", [])] if exp.routing.by_size else [])


@dataclass
class CostPoint:
    mean: float | None
    low: float | None
    high: float | None


def _cost(metrics: list[dict[str, Any]]) -> CostPoint:
    ci = t_interval([m.get("monthly_cost_usd") for m in metrics])
    if ci is None:
        return CostPoint(None, None, None)
    return CostPoint(ci[0], ci[1], ci[2])


def _tco(metrics: list[dict[str, Any]]) -> dict[str, float | None]:
    """Mean monthly amount of each part of the bill (the stacked TCO bar)."""
    out: dict[str, float | None] = {}
    for k in MONTH_PARTS:
        ci = t_interval([m.get(f"cost_tco_{k}_monthly_usd") for m in metrics])
        out[k] = None if ci is None else ci[0]
    return out


def crossing(volumes: list[float], d: list[float | None]) -> float | None:
    """First volume where d goes from > 0 to <= 0, linearly interpolated; None when it never does."""
    for i in range(1, len(volumes)):
        a, b = d[i - 1], d[i]
        if a is None or b is None:
            continue
        if a > 0 >= b:
            return volumes[i - 1] + (volumes[i] - volumes[i - 1]) * a / (a - b)
    return None


class Breakeven:
    def __init__(
        self,
        exp: Experiment,
        volumes: list[float],
        options: PlanOptions,
        max_servers: int,
        executor: Executor | None = None,
        base_dir: Path | None = None,
        log: Callable[[str], None] | None = None,
        space: Space | None = None,
        pool: str | None = None,
    ):
        self.exp, self.volumes, self.options, self.max_servers = exp, volumes, options, max_servers
        self.pool, self.servers_key = pool, servers_key(pool)  # the sized pool (None: the shorthand)
        self.columns = [tuple(c) for c in space.columns()] if space is not None else [()]
        self.targets, self.confidence = list(options.targets), options.confidence
        self.n0 = options.reps
        self.executor, self.base_dir = executor or Executor(), base_dir
        self.log = log or (lambda _msg: None)
        # with named pools the hybrid side is the fleet as configured
        self.hybrid_own = policy_of(exp.routing.policy).mixes or bool(exp.routing.by_size) or pool is not None
        self.hybrid_policy = exp.routing.policy if self.hybrid_own else "overflow"

    def _run(self, exp: Experiment, n: int) -> list[dict[str, Any]]:
        res = self.executor.metrics(exp, range(n))
        return [res[r] for r in range(n)]

    def run(self) -> dict[str, Any]:
        exp = self.exp
        rows: list[dict[str, Any]] = []
        prev_self: dict[tuple[Any, ...], int] = {}  # per column: more volume never needs fewer servers
        prev_hybrid: dict[tuple[Any, ...], int] = {}
        for v in self.volumes:
            rps = rate_for_volume(exp, v)
            ev = derive(exp, [("workload.arrivals.mean_rps", rps)], self.base_dir)
            self.log(f"volume {v:.4g} tokens/month: {rps:.4g} requests/s")
            # API-only
            api_exp = derive(ev, api_only_changes(exp), self.base_dir)
            api_m = self._run(api_exp, self.n0)
            api = _cost(api_m)
            api_p = sum(meets_all(self.targets, m) for m in api_m) / len(api_m)
            # self-hosted: the cheapest column (GPU type, TP, ...) at its smallest server count that meets
            best_self: tuple[float, Any, Any, CostPoint, dict[str, float | None], Experiment] | None = None
            gpu_exp = derive(ev, self_hosted_changes(exp, self.pool), self.base_dir)
            last_plan: dict[str, Any] | None = None  # what the search says when no column meets
            for col in self._fitting(gpu_exp):
                col_exp = derive(gpu_exp, list(col), self.base_dir)
                planner = self._planner(col_exp, VaryRange(self.servers_key, 1, self.max_servers, True))
                plan = planner.search(lo=prev_self.get(col, 1))
                last_plan = last_plan or plan.to_json()
                if plan.value is None:
                    continue
                prev_self[col] = int(plan.value)
                ans = plan.candidates[plan.value]
                first = [ans.metrics[r] for r in range(self.n0)]
                cost = self._self_band(planner, int(plan.value), _cost(first))
                if cost.mean is not None and (best_self is None or cost.mean < best_self[0]):
                    best_self = (cost.mean, col, plan, cost, _tco(first), col_exp)
            self_cost = CostPoint(None, None, None)
            self_tco: dict[str, float | None] = dict.fromkeys(MONTH_PARTS)
            self_value, self_plan_doc, self_choice, naive_exp = None, last_plan, None, gpu_exp
            if best_self is not None:
                _, col, plan, self_cost, self_tco, naive_exp = best_self
                self_value, self_plan_doc, self_choice = plan.value, plan.to_json(), dict(col)
            # hybrid: the cheapest column and server count of the hybrid routing
            best_hyb: tuple[float, Any, int, CostPoint, dict[str, Any] | None] | None = None
            for col in self._fitting(ev):
                col_ev = derive(ev, list(col), self.base_dir) if col else ev
                n, c, hplan = self._hybrid(col_ev, prev_hybrid.get(col, 0))
                if n is None:
                    continue
                prev_hybrid[col] = n
                if c.mean is not None and (best_hyb is None or c.mean < best_hyb[0]):
                    best_hyb = (c.mean, col, n, c, hplan)
            hyb_servers, hyb_cost, hyb_plan, hyb_choice = None, CostPoint(None, None, None), None, None
            if best_hyb is not None:
                _, col, hyb_servers, hyb_cost, hyb_plan = best_hyb
                hyb_choice = dict(col)
            rows.append(
                {
                    "volume": v,
                    "mean_rps": rps,
                    "api": api,
                    "api_tco": _tco(api_m),
                    "self_tco": self_tco,
                    "api_p_meet": api_p,
                    "self": self_cost,
                    "self_servers": self_value,
                    "self_plan": self_plan_doc,
                    "self_choice": self_choice,
                    "naive_servers": naive_servers(naive_exp, self.pool),
                    "hybrid": hyb_cost,
                    "hybrid_servers": hyb_servers,
                    "hybrid_plan": hyb_plan,
                    "hybrid_choice": hyb_choice,
                }
            )
            self.log(
                f"  api ${_fmt(api.mean)}  self-hosted {self_value} servers{_choice(self_choice)} "
                f"${_fmt(self_cost.mean)}  "
                f"hybrid {hyb_servers} servers{_choice(hyb_choice)} ${_fmt(hyb_cost.mean)}"
            )
        return self._doc(rows)

    def _fitting(self, exp: Experiment) -> list[tuple[Any, ...]]:
        """The columns whose model fits its GPUs' memory (the memory screen; the rest cannot be deployed)."""
        return [
            c
            for c in self.columns
            if not c or memory_problem(derive(exp, list(c), self.base_dir, checks=False)) is None
        ]

    def _sized(self, exp: Experiment) -> GpuPoolSpec:
        """The sized pool's spec in `exp` (a column may have changed its GPU)."""
        return exp.backends.gpu_pool if self.pool is None else exp.backends.gpu_pools[self.pool]

    def _planner(self, exp: Experiment, vary: VaryRange) -> Planner:
        return Planner(exp, vary, self.options, self.executor, self.base_dir)

    def _self_band(self, planner: Planner, n: int, cost: CostPoint) -> CostPoint:
        """Widen the answer's cost interval by the sizing uncertainty: one server less when the evidence
        against it was not conclusive, one more when the answer was only decided at the cap."""
        spec = self._sized(planner.exp)
        server_month = server_price(spec).usd_per_hour * planner.exp.costs.hours_per_month
        if cost.mean is None or cost.low is None or cost.high is None:
            return cost
        low, high = cost.low, cost.high
        below = planner.candidates.get(n - 1)
        if below is not None and below.decision.endswith("at cap"):
            low = min(low, cost.mean - server_month)
        if planner.candidates[n].decision.endswith("at cap"):
            high = max(high, cost.mean + server_month)
        return CostPoint(cost.mean, low, high)

    def _hybrid(self, ev: Experiment, start: int) -> tuple[int | None, CostPoint, dict[str, Any] | None]:
        """The cheapest server count (from the plan's answer upward) of the hybrid routing."""
        changes: list[tuple[str, Any]] = [] if self.hybrid_own else [("routing.policy", "overflow")]
        hexp = derive(ev, changes, self.base_dir) if changes else ev
        lo = start
        planner = self._planner(hexp, VaryRange(self.servers_key, 0, self.max_servers, True))
        plan = planner.search(lo=lo)
        if plan.value is None:
            return None, CostPoint(None, None, None), plan.to_json()

        def cost_of(n: int) -> float:
            c = planner.candidate(n)
            planner.ensure(c, self.n0)
            m = [c.metrics[r] for r in range(self.n0)]
            mean = _cost(m).mean
            return math.inf if mean is None else float(mean)

        best = int(plan.value)
        best_cost = cost_of(best)
        n = best + 1
        while n <= self.max_servers:  # screening: the first n0 replications only
            cn = cost_of(n)
            if cn >= best_cost:
                break
            c = planner.candidates[n]
            if sum(meets_all(self.targets, c.metrics[r]) for r in range(self.n0)) >= self.confidence * self.n0:
                best, best_cost = n, cn
            n += 1
        while not planner.decide(best) and best < self.max_servers:  # confirm the choice (sequential rule)
            best += 1
        ans = planner.candidates[best]
        cost = _cost([ans.metrics[r] for r in range(self.n0)])
        return best, cost, planner._result(best).to_json()

    def _doc(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        vols = [r["volume"] for r in rows]

        def col(name: str, field: str) -> list[float | None]:
            return [getattr(r[name], field) for r in rows]

        def diff(a: list[float | None], b: list[float | None]) -> list[float | None]:
            return [None if x is None or y is None else x - y for x, y in zip(a, b, strict=True)]

        api_m, self_m = col("api", "mean"), col("self", "mean")
        e_in, e_out = class_token_means(self.exp)
        price = server_price(self._sized(self.exp))
        pools = self.exp.backends.pools()
        sized = self.pool or next(iter(pools))
        return {
            "volumes": vols,
            "api_monthly_usd": api_m,
            "self_hosted_monthly_usd": self_m,
            "hybrid_monthly_usd": col("hybrid", "mean"),
            "self_hosted_servers": [r["self_servers"] for r in rows],
            "breakeven_tokens_per_month": crossing(vols, diff(self_m, api_m)),
            "breakeven_interval": [
                crossing(vols, diff(col("self", "low"), col("api", "high"))),
                crossing(vols, diff(col("self", "high"), col("api", "low"))),
            ],
            "hybrid_breakeven_tokens_per_month": crossing(vols, diff(col("hybrid", "mean"), api_m)),
            "api_monthly_ci95": [[r["api"].low, r["api"].high] for r in rows],
            "self_hosted_monthly_band": [[r["self"].low, r["self"].high] for r in rows],
            "hybrid_monthly_ci95": [[r["hybrid"].low, r["hybrid"].high] for r in rows],
            "hybrid_servers": [r["hybrid_servers"] for r in rows],
            "hybrid_policy": self.hybrid_policy + ("" if self.hybrid_own else " (derived: the config does not mix)"),
            "naive_servers": [r["naive_servers"] for r in rows],
            "server_capacity_rps": server_capacity_rps(self.exp, self.pool),
            "mean_rps": [r["mean_rps"] for r in rows],
            "api_p_meet": [r["api_p_meet"] for r in rows],
            "tokens_per_request": e_in + e_out,
            "input_tokens_per_request": e_in,
            "output_tokens_per_request": e_out,
            "fixed_monthly_usd": self.exp.costs.fixed_monthly_usd,
            "fixed_scope": self.exp.costs.fixed_scope,
            "price_per_server_hour_usd": price.usd_per_hour,
            "price_source": price.source,
            "tco_parts": list(MONTH_PARTS),
            "api_tco_monthly_usd": [r["api_tco"] for r in rows],
            "self_hosted_tco_monthly_usd": [r["self_tco"] for r in rows],
            "targets": [str(t) for t in self.targets],
            "confidence": self.confidence,
            "seed": self.exp.seed,
            "self_hosted_plans": [r["self_plan"] for r in rows],
            "hybrid_plans": [r["hybrid_plan"] for r in rows],
            "self_hosted_choice": [r["self_choice"] for r in rows],
            "hybrid_choice": [r["hybrid_choice"] for r in rows],
            # per pool: the sized pool, every pool's configured servers and price, the hybrid's servers by pool
            "pool": sized,
            "pools": {
                name: {"servers": spec.servers, "price_per_server_hour_usd": server_price(spec).usd_per_hour}
                for name, spec in pools.items()
            },
            "hybrid_servers_by_pool": [
                None if r["hybrid_servers"] is None else {**self._used_servers(), sized: r["hybrid_servers"]}
                for r in rows
            ],
        }

    def _used_servers(self) -> dict[str, int]:
        """The servers of the pools the config's own routing reaches (the hybrid side's fleet)."""
        return {name: spec.servers for name, spec in used_pools(self.exp).items()}


def _choice(values: dict[str, Any] | None) -> str:
    return "" if not values else " (" + ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in values.items()) + ")"


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _human(v: float) -> str:
    from sim.core.units import fmt_count

    return fmt_count(v)


def _tco_bars(ax: Any, doc: dict[str, Any]) -> None:
    """Stacked bars: the self-hosted month per volume split into GPUs, operations, people, ... (sim.bill)."""
    parts = doc.get("tco_parts") or []
    rows = doc.get("self_hosted_tco_monthly_usd") or []
    labels = [_human(v) for v in doc["volumes"]]
    bottom = [0.0] * len(labels)
    for part in parts:
        vals = [float((r or {}).get(part) or 0.0) for r in rows]
        if not any(vals):
            continue
        ax.bar(labels, vals, bottom=bottom, label=part, width=0.6)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xlabel("tokens per month")
    ax.set_ylabel("self-hosted month, USD")
    ax.set_title("self-hosted total cost of ownership per volume (stacked means)", fontsize=9)
    if any(bottom):
        ax.legend(fontsize=8, ncol=3)
    ax.grid(True, axis="y", alpha=0.3)
