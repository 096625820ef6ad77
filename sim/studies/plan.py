"""`capsim plan`: the smallest value of a key whose replications meet every target with probability >= P.

Search (assumes that raising the value never makes the targets harder to meet):
  0. screens (sim.studies.screens, unless PlanOptions.screens is off): for the server count, the values
     below the fewest servers whose full-batch throughput reaches the busiest hour's arrival rate are ruled
     out unsimulated, so the search starts at that count; a value whose model does not fit the GPUs' memory
     fails unsimulated;
  1. galloping from LO: LO, LO+s, LO+3s, LO+7s, ... (steps doubling, clamped to HI) until a value meets;
     if HI fails, no value in range does (exit 3);
  2. bisection between the last value that failed and the first that met, down to one integer step
     (real keys: down to `tol`).
Every candidate runs the same replication indices 0..n-1 of the same root seed (common random numbers), so
candidates are compared on identical arrivals and sizes, and a candidate revisited with more replications
only runs the new ones.

Deciding one candidate (sequential): run n0 replications; P(meet) is the share that meet every target,
with a Wilson interval (sim.targets.DECISION_LEVEL). While that interval straddles P, double the
replications, up to `max_reps`. It meets when the whole interval is at or above P, fails when it is below;
at the cap, still undecided, the point estimate decides (p_meet >= P), and the evidence says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.config import Experiment
from sim.core.stats import t_interval
from sim.engine.executor import Executor
from sim.engine.targets import DECISION_LEVEL, Target, meets_all, proportion
from sim.engine.variants import derive
from sim.studies.screens import SERVERS_KEY, memory_problem, min_servers, server_capacity_rps

_RANGE = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*=\s*([-+0-9.eE]+)\s*\.\.\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class VaryRange:
    key: str
    lo: float
    hi: float
    integer: bool

    @classmethod
    def parse(cls, text: str) -> VaryRange:
        m = _RANGE.match(text)
        if not m:
            raise ValueError(f"--vary: expected KEY=LO..HI (e.g. backends.gpu_pool.servers=1..32), got {text!r}")
        key, lo_s, hi_s = m.groups()
        integer = _is_int(lo_s) and _is_int(hi_s)
        lo, hi = (int(lo_s), int(hi_s)) if integer else (float(lo_s), float(hi_s))
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"--vary: need finite LO <= HI, got {lo_s}..{hi_s}")
        return cls(key, lo, hi, integer)

    def value(self, x: float) -> int | float:
        return int(round(x)) if self.integer else float(x)


def _is_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True


@dataclass
class Candidate:
    value: int | float
    exp: Experiment
    metrics: dict[int, dict[str, Any]] = field(default_factory=dict)
    decision: str = ""  # meets | fails (| "... at cap" when the point estimate decided)

    def evidence(self, targets: Sequence[Target], confidence: float) -> dict[str, Any]:
        """The decision's evidence: P(meet) with its Wilson interval, the monthly cost and every target's
        metric with their t intervals over the replications run."""
        reps = sorted(self.metrics)
        k = sum(1 for r in reps if meets_all(targets, self.metrics[r]))
        prop = proportion(k, len(reps), confidence)
        per_target = {str(t): sum(1 for r in reps if t.met_by(self.metrics[r])) / len(reps) for t in targets}
        cost = t_interval([self.metrics[r].get("monthly_cost_usd") for r in reps])
        return {
            "value": self.value,
            "p_meet": prop["p_meet"],
            "replications": len(reps),
            "met": prop["met"],
            "p_meet_low": prop["wilson95_low"],
            "p_meet_high": prop["wilson95_high"],
            "decision": self.decision,
            "p_meet_by_target": per_target,
            "monthly_cost_usd": cost[0] if cost else None,
            "monthly_cost_ci95": [cost[1], cost[2]] if cost else None,
            "metrics": {name: self.mean(name) for name in objective_metrics(targets)},
        }

    def mean(self, name: str) -> dict[str, Any]:
        """A metric's mean over the replications run, with its t interval (None where undefined)."""
        ci = t_interval([self.metrics[r].get(name) for r in sorted(self.metrics)])
        return {"mean": ci[0], "ci95": [ci[1], ci[2]]} if ci else {"mean": None, "ci95": None}


def objective_metrics(targets: Sequence[Target]) -> list[str]:
    """What a frontier trades against cost: every target's metric, availability and p95 TTFT (the chart's axis)."""
    names = [t.metric for t in targets]
    return list(dict.fromkeys([*names, "availability", "ttft_p95_s"]))


@dataclass
class PlanResult:
    key: str
    value: int | float | None
    confidence: float
    targets: list[Target]
    candidates: dict[int | float, Candidate]
    order: list[int | float]
    seed: int
    screened: dict[int | float, str] = field(default_factory=dict)

    @property
    def answer(self) -> Candidate | None:
        return None if self.value is None else self.candidates[self.value]

    def to_json(self) -> dict[str, Any]:
        tried = [self.candidates[v].evidence(self.targets, self.confidence) for v in sorted(self.candidates)]
        ans = self.answer
        ans_ev = ans.evidence(self.targets, self.confidence) if ans else None
        return {
            "key": self.key,
            "value": self.value,
            "confidence": self.confidence,
            "monthly_cost_usd": ans_ev["monthly_cost_usd"] if ans_ev else None,
            "tried": tried,
            "targets": [str(t) for t in self.targets],
            "seed": self.seed,
            "search_order": list(self.order),
            "interval_level": DECISION_LEVEL,
            "monthly_cost_ci95": ans_ev["monthly_cost_ci95"] if ans_ev else None,
            "screened": [{"value": v, "decision": "screened", "reason": r} for v, r in sorted(self.screened.items())],
        }


@dataclass(frozen=True)
class PlanOptions:
    """What a search decides by: the targets, the required P(meet), and its replication budget per candidate
    (`reps` to start with, doubled while undecided up to `max_reps`); `tol`: real keys stop bisecting at
    this width (default: a hundredth of the range); `cost_screen` (opt-in, sim.studies.search): skip the
    points whose fixed GPU pools alone cost more than the cheapest point found so far to meet."""

    targets: tuple[Target, ...]
    confidence: float
    reps: int = 10
    max_reps: int = 80
    tol: float | None = None
    screens: bool = True
    cost_screen: bool = False

    def __post_init__(self) -> None:
        if self.reps < 1 or self.max_reps < self.reps:
            raise ValueError(f"need 1 <= reps <= max-reps, got {self.reps} and {self.max_reps}")
        if self.tol is not None and not (math.isfinite(self.tol) and self.tol > 0):
            raise ValueError(f"--tol: must be > 0, got {self.tol}")


class Planner:
    """Evaluates candidates with common random numbers and sequential replications; caches every result."""

    def __init__(
        self,
        exp: Experiment,
        vary: VaryRange,
        options: PlanOptions,
        executor: Executor | None = None,
        base_dir: Path | None = None,
        on_progress: Callable[[str], None] | None = None,
    ):
        self.exp, self.vary, self.options = exp, vary, options
        self.targets, self.confidence = list(options.targets), options.confidence
        self.n0, self.max_reps = options.reps, options.max_reps
        tol = options.tol
        self.tol = tol if tol is not None else (vary.hi - vary.lo) / 100.0 if not vary.integer else 1
        self.executor, self.base_dir = executor or Executor(), base_dir
        self.candidates: dict[int | float, Candidate] = {}
        self.screened: dict[int | float, str] = {}
        self.order: list[int | float] = []
        self.on_progress = on_progress or (lambda _msg: None)

    def replications_run(self) -> int:
        return sum(len(c.metrics) for c in self.candidates.values())

    def screen(self, v: int | float) -> str | None:
        """Why value v cannot meet the targets without simulating it (sim.studies.screens), or None."""
        if not self.options.screens:
            return None
        if v not in self.screened:
            point = derive(self.exp, [(self.vary.key, v)], self.base_dir, checks=False)
            reason = memory_problem(point)
            if reason is None and self.vary.key == SERVERS_KEY and self.vary.integer:
                need = min_servers(point, self.targets)
                if need is not None and v < need:
                    reason = f"throughput: {v} x {server_capacity_rps(point):.4g} req/s < busiest hour's rate"
            if reason is None:
                return None
            self.screened[v] = reason
        return self.screened[v]

    def first_unscreened(self, lo: int | float) -> int | float:
        """The first value from lo that the throughput screen lets through (lo itself for other keys)."""
        if not (self.options.screens and self.vary.key == SERVERS_KEY and self.vary.integer):
            return lo
        point = derive(self.exp, [(self.vary.key, self.vary.value(lo))], self.base_dir, checks=False)
        if memory_problem(point) is not None:
            return lo
        first = max(lo, min_servers(point, self.targets) or lo)
        for v in range(int(lo), int(min(first, self.vary.hi + 1))):
            self.screen(v)
        return first

    def candidate(self, x: float) -> Candidate:
        v = self.vary.value(x)
        if v not in self.candidates:
            self.candidates[v] = Candidate(v, derive(self.exp, [(self.vary.key, v)], self.base_dir))
        return self.candidates[v]

    def ensure(self, c: Candidate, n: int) -> None:
        todo = [r for r in range(n) if r not in c.metrics]
        c.metrics.update(self.executor.metrics(c.exp, todo))

    def decide(self, x: float) -> bool:
        v = self.vary.value(x)
        reason = self.screen(v)
        if reason is not None:
            if v not in self.order:
                self.order.append(v)
                self.on_progress(f"{self.vary.key}={v}: screened ({reason})")
            return False
        c = self.candidate(x)
        if c.value not in self.order:
            self.order.append(c.value)
        if c.decision:
            return c.decision.startswith("meets")
        n = self.n0
        while True:
            self.ensure(c, n)
            k = sum(1 for r in range(n) if meets_all(self.targets, c.metrics[r]))
            prop = proportion(k, n, self.confidence)
            if prop["verdict"] != "undecided":
                c.decision = prop["verdict"]
                break
            if n >= self.max_reps:
                c.decision = ("meets" if prop["p_meet"] >= self.confidence else "fails") + " at cap"
                break
            n = min(self.max_reps, 2 * n)
        self.on_progress(f"{self.vary.key}={c.value}: {c.decision} ({k}/{n} replications meet)")
        return c.decision.startswith("meets")

    def search(self, lo: float | None = None) -> PlanResult:
        """Galloping from `lo` (default LO) then bisection; returns the smallest value that meets."""
        vlo, vhi = self.vary.lo if lo is None else max(lo, self.vary.lo), self.vary.hi
        vlo = self.first_unscreened(vlo)
        if vlo > vhi:
            return self._result(None)
        if self.decide(vlo):
            return self._result(self.vary.value(vlo))
        failed, step = vlo, self.tol
        x = vlo
        while True:
            x = min(vhi, x + step)
            if self.decide(x):
                met = x
                break
            failed = x
            if x >= vhi:
                return self._result(None)
            step *= 2
        while met - failed > self.tol * (1 + 1e-9):
            mid = (failed + met) / 2.0
            if self.vary.integer:
                mid = math.floor(mid)
                if mid <= failed:
                    break
            if self.decide(mid):
                met = mid
            else:
                failed = mid
        return self._result(self.vary.value(met))

    def _result(self, value: int | float | None) -> PlanResult:
        return PlanResult(
            self.vary.key,
            value,
            self.confidence,
            self.targets,
            self.candidates,
            self.order,
            self.exp.seed,
            self.screened,
        )


def resolve_options(
    exp: Experiment,
    texts: Sequence[str] | None,
    confidence: float | None,
    reps: int = 10,
    max_reps: int = 80,
    tol: float | None = None,
    screens: bool = True,
    cost_screen: bool = False,
) -> PlanOptions:
    """The search's options, targets and P defaulting to the config's `plan` section (ValueError when bad)."""
    from sim.engine.targets import parse_targets

    targets = parse_targets(texts if texts else exp.plan.targets)
    if not targets:
        raise ValueError("no targets: give --target METRIC<=VALUE or set plan.targets in the config")
    p = exp.plan.confidence if confidence is None else float(confidence)
    if not 0.0 < p < 1.0:
        raise ValueError(f"--confidence: must be in (0, 1), got {confidence!r}")
    if max_reps < reps:
        raise ValueError(f"--max-reps ({max_reps}) must be >= --reps ({reps})")
    return PlanOptions(tuple(targets), p, reps, max_reps, tol, screens, cost_screen)
