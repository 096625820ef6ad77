"""`capsim plan` over several dimensions: the cheapest configuration that meets every target with
probability >= P, the Pareto frontier of what was evaluated, and every point's decision.

Space: `--vary KEY=V1,V2,...` dimensions are enumerated (categorical values, or integers such as a tensor
parallel degree that are not monotone in cost); at most one `--vary KEY=LO..HI` dimension is searched,
and it must be monotone: raising it never makes the targets harder to meet and never lowers the cost (a
server count). A column is one combination of the enumerated values; in each column the plan search
(sim.studies.plan.Planner: screens, galloping, bisection, sequential replications) finds the smallest
value of the searched key that meets, which is then that column's cheapest. Without a searched dimension
every point of the product is one decided candidate.

Efficiency, all of it without changing a decision:
* common random numbers: every point runs replication indices 0..n-1 of the same root seed;
* analytic screens (sim.studies.screens) rule out, unsimulated, points whose model does not fit the GPU
  memory and server counts whose full-batch throughput is below the busiest hour's arrival rate;
* galloping and bisection on the searched dimension, so a column decides O(log range) values;
* sequential replications (successive halving): every point starts with `reps` replications and only a
  point whose Wilson interval still straddles P gets more (doubling up to `max_reps`).
Decisions depend only on replications' metrics, which are pure functions of (config, index): the local
pool and Dask give identical documents.

Opt-in cost screen (`PlanOptions.cost_screen`, `capsim plan --cost-screen`): once a column has an answer,
a later point whose fixed GPU pools alone cost more a month than the cheapest answer so far
(sim.studies.screens.fixed_pool_monthly_usd, a floor under its monthly cost) cannot be the best, so it is
not simulated: a column's searched range stops below the first such value (the floor grows with the
searched value, as the cost does), a column whose lowest value is above the bar is screened. The best is
the exhaustive search's; `tried`, `pareto` and `best_by_gpu` hold fewer points.

Best: the cheapest (mean monthly cost) point that meets, ties to the first in column order. Pareto: the
evaluated points (every point simulated, met or not) that no other point beats on monthly cost, on every
latency target's metric (lower is better) and on availability (higher is better), compared on means.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.gpu.catalog import gpu_of
from sim.config import Experiment
from sim.engine.executor import Executor
from sim.engine.targets import DECISION_LEVEL
from sim.engine.variants import derive, format_value, parse_assignment_list
from sim.studies.plan import Candidate, Planner, PlanOptions, VaryRange, objective_metrics
from sim.studies.screens import fixed_pool_monthly_usd, memory_problem

MAX_COLUMNS = 10_000
COST_SLACK = 1e-9  # the cost screen skips a floor above the cheapest cost by more than this share (rounding)
_RANGE_SHAPE = re.compile(r"^[^=]*=\s*[-+0-9.eE]+\s*\.\.\s*[-+0-9.eE]+\s*$")


@dataclass(frozen=True)
class Space:
    """The enumerated dimensions (key, values) and the one searched range, if any."""

    enumerated: tuple[tuple[str, tuple[Any, ...]], ...]
    searched: VaryRange | None

    @classmethod
    def parse(cls, texts: Sequence[str]) -> Space:
        if not texts:
            raise ValueError("--vary: give at least one dimension (KEY=LO..HI or KEY=V1,V2,...)")
        enumerated: list[tuple[str, tuple[Any, ...]]] = []
        searched: VaryRange | None = None
        seen: set[str] = set()
        for text in texts:
            if _RANGE_SHAPE.match(text):
                r = VaryRange.parse(text)
                if searched is not None:
                    raise ValueError(
                        f"--vary: one KEY=LO..HI dimension is searched ({searched.key}); give {r.key} as V1,V2,..."
                    )
                key, searched = r.key, r
            else:
                key, values = parse_assignment_list(text)
                if len(set(map(format_value, values))) < len(values):
                    raise ValueError(f"--vary {text}: a value is given twice")
                enumerated.append((key, tuple(values)))
            if key in seen:
                raise ValueError(f"--vary: {key} is given twice")
            seen.add(key)
        space = cls(tuple(enumerated), searched)
        if space.num_columns > MAX_COLUMNS:
            raise ValueError(f"--vary: {space.num_columns} combinations; at most {MAX_COLUMNS}")
        return space

    @property
    def keys(self) -> list[str]:
        return [k for k, _ in self.enumerated] + ([self.searched.key] if self.searched else [])

    @property
    def num_columns(self) -> int:
        n = 1
        for _, values in self.enumerated:
            n *= len(values)
        return n

    def columns(self) -> list[tuple[tuple[str, Any], ...]]:
        """Every combination of the enumerated values, in the order given (the last dimension fastest)."""
        keys = [k for k, _ in self.enumerated]
        return [tuple(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in self.enumerated))]

    def num_points(self) -> int | None:
        """Candidate configurations in the space (None when the searched range is real-valued)."""
        if self.searched is None:
            return self.num_columns
        if not self.searched.integer:
            return None
        return self.num_columns * (int(self.searched.hi) - int(self.searched.lo) + 1)


@dataclass
class Column:
    changes: tuple[tuple[str, Any], ...]
    exp: Experiment | None = None
    planner: Planner | None = None
    single: Candidate | None = None  # without a searched range: the column's one point
    screened: str | None = None  # why the whole column is ruled out unsimulated
    answer: int | float | None = None
    searched_hi: int | float | None = None  # the cost screen's end of the searched range (None: not cut)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={format_value(v)}" for k, v in self.changes)


@dataclass
class Search:
    exp: Experiment
    space: Space
    options: PlanOptions
    executor: Executor = field(default_factory=Executor)
    base_dir: Path | None = None
    on_progress: Callable[[str], None] = lambda _msg: None
    cheapest: float | None = field(default=None, init=False)  # the cost screen's bar: cheapest answer so far

    def run(self) -> SearchResult:
        columns = [Column(c) for c in self.space.columns()]
        for col in columns:
            self._solve(col)
            if self.options.cost_screen and col.answer is not None and col.planner is not None:
                c = col.single if col.single is not None else col.planner.candidates[col.answer]
                cost = c.evidence(self.options.targets, self.options.confidence)["monthly_cost_usd"]
                if cost is not None and (self.cheapest is None or cost < self.cheapest):
                    self.cheapest = float(cost)
        return SearchResult(self, columns)

    def _cost_cut(self, exp: Experiment, searched: VaryRange | None) -> tuple[VaryRange | None, str | None]:
        """The cost screen: the searched range cut to the values whose floor is within the bar, or why the
        whole column is above it."""
        assert self.cheapest is not None
        bar = self.cheapest * (1.0 + COST_SLACK)

        def above(f: float) -> str:
            return f"cost: fixed GPU pools ${f:,.2f}/month > the cheapest point found, ${self.cheapest:,.2f}"

        if searched is None:
            f = fixed_pool_monthly_usd(exp)
            return None, above(f) if f > bar else None
        if not searched.integer:
            return searched, None

        def floor(v: int) -> float:
            return fixed_pool_monthly_usd(derive(exp, [(searched.key, v)], self.base_dir, checks=False))

        lo, hi = int(searched.lo), int(searched.hi)
        if (f := floor(lo)) > bar:
            return searched, above(f)
        if floor(hi) <= bar:
            return searched, None
        while hi - lo > 1:  # the largest value whose floor is within the bar
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if floor(mid) <= bar else (lo, mid)
        return VaryRange(searched.key, searched.lo, lo, True), None

    def _solve(self, col: Column) -> None:
        say = self.on_progress
        base = derive(self.exp, list(col.changes), self.base_dir, checks=False)
        reason = memory_problem(base) if self.options.screens else None
        if reason is not None:
            col.screened = reason
            say(f"{col.label}: screened ({reason})")
            return
        col.exp = derive(self.exp, list(col.changes), self.base_dir)
        searched = self.space.searched
        if self.options.cost_screen and self.cheapest is not None:
            searched, reason = self._cost_cut(col.exp, searched)
            if reason is not None:
                col.screened = reason
                say(f"{col.label}: screened ({reason})")
                return
            if searched is not None and self.space.searched is not None and searched.hi < self.space.searched.hi:
                col.searched_hi = searched.hi
        prefix = f"{col.label}, " if col.changes else ""
        planner_say: Callable[[str], None] = lambda msg: say(prefix + msg)  # noqa: E731
        if searched is not None:
            col.planner = Planner(col.exp, searched, self.options, self.executor, self.base_dir, planner_say)
            col.answer = col.planner.search().value
            return
        # no searched dimension: the column is one point, decided by the sequential rule
        one = VaryRange("replications", col.exp.replications, col.exp.replications, True)
        col.planner = Planner(col.exp, one, self.options, self.executor, self.base_dir, lambda _m: None)
        meets = col.planner.decide(col.exp.replications)
        col.single = col.planner.candidates[col.exp.replications]
        col.answer = col.exp.replications if meets else None
        say(f"{col.label}: {col.single.decision} ({_met(col.single, self.options)}/{len(col.single.metrics)} meet)")


def _met(c: Candidate, options: PlanOptions) -> int:
    from sim.engine.targets import meets_all

    return sum(1 for m in c.metrics.values() if meets_all(options.targets, m))


@dataclass
class SearchResult:
    search: Search
    columns: list[Column]

    def points(self) -> list[tuple[Column, Candidate]]:
        """Every simulated point: (its column, its candidate), in column order then value order."""
        out = []
        for col in self.columns:
            if col.planner is None:
                continue
            if col.single is not None:
                out.append((col, col.single))
            else:
                out.extend((col, col.planner.candidates[v]) for v in sorted(col.planner.candidates))
        return out

    def values_of(self, col: Column, c: Candidate) -> dict[str, Any]:
        vals = {k: v for k, v in col.changes}
        if self.search.space.searched is not None and col.single is None:
            vals[self.search.space.searched.key] = c.value
        return vals

    def best(self) -> tuple[Column, Candidate] | None:
        found: tuple[Column, Candidate, float] | None = None
        for col in self.columns:
            if col.answer is None or col.planner is None:
                continue
            c = col.single if col.single is not None else col.planner.candidates[col.answer]
            cost = c.evidence(self.search.options.targets, self.search.options.confidence)["monthly_cost_usd"]
            if cost is None:
                continue
            if found is None or cost < found[2]:
                found = (col, c, float(cost))
        return None if found is None else (found[0], found[1])

    def replications_run(self) -> int:
        return sum(col.planner.replications_run() for col in self.columns if col.planner is not None)

    def to_json(self) -> dict[str, Any]:
        opts, space = self.search.options, self.search.space
        targets, p = opts.targets, opts.confidence
        entries = []
        for col, c in self.points():
            e = c.evidence(targets, p)
            e["values"] = self.values_of(col, c)
            e["gpu"] = gpu_of(c.exp.backends.gpu_pool).name
            if space.searched is None:
                e["value"] = None
            entries.append(e)
        best = self.best()
        best_doc = None
        if best is not None:
            b = best[1].evidence(targets, p)
            best_doc = {
                "values": self.values_of(*best),
                "monthly_cost_usd": b["monthly_cost_usd"],
                "monthly_cost_ci95": b["monthly_cost_ci95"],
                "p_meet": b["p_meet"],
                "p_meet_wilson": [b["p_meet_low"], b["p_meet_high"]],
                "replications": b["replications"],
                "decision": b["decision"],
                "metrics": b["metrics"],
            }
        screened: list[dict[str, Any]] = []
        for col in self.columns:
            if col.screened is not None:
                screened.append({"values": dict(col.changes), "decision": "screened", "reason": col.screened})
            elif col.planner is not None and col.single is None and space.searched is not None:
                for v, reason in sorted(col.planner.screened.items()):
                    vals = {**dict(col.changes), space.searched.key: v}
                    screened.append({"values": vals, "value": v, "decision": "screened", "reason": reason})
        searched_key = space.searched.key if space.searched else None
        best_value = best_doc["values"].get(searched_key) if best_doc and searched_key else None
        doc: dict[str, Any] = {
            "key": searched_key if searched_key else ",".join(space.keys),
            "value": best_value,
            "confidence": p,
            "monthly_cost_usd": best_doc["monthly_cost_usd"] if best_doc else None,
            "tried": entries,
            "targets": [str(t) for t in targets],
            "seed": self.search.exp.seed,
            "search_order": self._order(),
            "interval_level": DECISION_LEVEL,
            "monthly_cost_ci95": best_doc["monthly_cost_ci95"] if best_doc else None,
            "dimensions": [{"key": k, "values": list(v)} for k, v in space.enumerated]
            + (
                [{"key": space.searched.key, "range": [space.searched.lo, space.searched.hi]}] if space.searched else []
            ),
            "best": best_doc,
            "pareto": pareto(entries, targets),
            "best_by_gpu": best_by_gpu(entries),
            "screened": screened,
            "candidates_in_space": space.num_points(),
            "replications_simulated": self.replications_run(),
            "columns": [
                {"values": dict(col.changes), "answer": col.answer, "screened": col.screened} for col in self.columns
            ],
        }
        if opts.cost_screen:  # only then: the default document is unchanged
            doc["cost_screen"] = True
            for entry, col in zip(doc["columns"], self.columns, strict=True):
                entry["searched_up_to"] = col.searched_hi
        return doc

    def _dimensions(self) -> list[dict[str, Any]]:
        space = self.search.space
        dims: list[dict[str, Any]] = [{"key": k, "values": list(v)} for k, v in space.enumerated]
        if space.searched is not None:
            dims.append({"key": space.searched.key, "range": [space.searched.lo, space.searched.hi]})
        return dims

    def _order(self) -> list[Any]:
        space = self.search.space
        if not space.enumerated and space.searched is not None:
            col = self.columns[0]
            return list(col.planner.order) if col.planner else []
        out: list[Any] = []
        for col in self.columns:
            if col.planner is None:
                continue
            if col.single is not None or space.searched is None:
                out.append(dict(col.changes))
            else:
                out.extend({**dict(col.changes), space.searched.key: v} for v in col.planner.order)
        return out


def exhaustive(
    exp: Experiment,
    space: Space,
    options: PlanOptions,
    executor: Executor | None = None,
    base_dir: Path | None = None,
) -> dict[str, Any]:
    """Brute force, to check the search against: every point of an integer space decided by the same
    sequential rule on the same replications, no screens (a point whose model does not fit its GPUs is
    counted, not simulated: it cannot be deployed); the cheapest that meets, and the cost in replications."""
    from dataclasses import replace

    plain = replace(options, screens=False, cost_screen=False)
    runner = executor or Executor()
    best: tuple[float, dict[str, Any]] | None = None
    reps = points = 0
    decisions: list[dict[str, Any]] = []
    for changes in space.columns():
        if memory_problem(derive(exp, list(changes), base_dir, checks=False)) is not None:
            points += (int(r.hi) - int(r.lo) + 1) if (r := space.searched) is not None else 1  # not deployable
            continue
        col_exp = derive(exp, list(changes), base_dir)
        r = space.searched or VaryRange("replications", col_exp.replications, col_exp.replications, True)
        planner = Planner(col_exp, r, plain, runner, base_dir)
        for v in range(int(r.lo), int(r.hi) + 1):
            points += 1
            meets = planner.decide(v)
            c = planner.candidates[v]
            values = {**dict(changes), **({r.key: v} if space.searched else {})}
            decisions.append({"values": values, "decision": c.decision})
            if not meets:
                continue
            cost = c.evidence(plain.targets, plain.confidence)["monthly_cost_usd"]
            if cost is not None and (best is None or cost < best[0]):
                best = (float(cost), values)
        reps += planner.replications_run()
    return {
        "best": None if best is None else best[1],
        "monthly_cost_usd": None if best is None else best[0],
        "points": points,
        "replications_simulated": reps,
        "decisions": decisions,
    }


def best_by_gpu(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The cheapest point that meets, per GPU type (the report's table)."""
    out: dict[str, dict[str, Any]] = {}
    for e in entries:
        if not e["decision"].startswith("meets") or e["monthly_cost_usd"] is None:
            continue
        have = out.get(e["gpu"])
        if have is None or e["monthly_cost_usd"] < have["monthly_cost_usd"]:
            out[e["gpu"]] = {k: e[k] for k in ("values", "monthly_cost_usd", "monthly_cost_ci95", "p_meet", "metrics")}
            out[e["gpu"]]["p_meet_wilson"] = [e["p_meet_low"], e["p_meet_high"]]
    return out


def pareto(entries: list[dict[str, Any]], targets: Sequence[Any]) -> list[dict[str, Any]]:
    """The entries that no other entry beats on cost, every latency target's metric and availability."""
    lower = [t.metric for t in targets if t.op == "<="]
    higher = list(dict.fromkeys([t.metric for t in targets if t.op == ">="] + ["availability"]))

    def objectives(e: dict[str, Any]) -> list[float] | None:
        vals = [e["monthly_cost_usd"]] + [e["metrics"][m]["mean"] for m in lower]
        vals += [None if e["metrics"][m]["mean"] is None else -e["metrics"][m]["mean"] for m in higher]
        return None if any(v is None for v in vals) else [float(v) for v in vals]

    scored = [(e, objectives(e)) for e in entries]
    valid = [(e, o) for e, o in scored if o is not None]
    front = []
    for e, o in valid:
        dominated = any(
            all(a <= b for a, b in zip(q, o, strict=True)) and any(a < b for a, b in zip(q, o, strict=True))
            for _, q in valid
        )
        if not dominated:
            front.append(
                {
                    "values": e["values"],
                    "monthly_cost_usd": e["monthly_cost_usd"],
                    "monthly_cost_ci95": e["monthly_cost_ci95"],
                    "p_meet": e["p_meet"],
                    "p_meet_wilson": [e["p_meet_low"], e["p_meet_high"]],
                    "decision": e["decision"],
                    "gpu": e["gpu"],
                    "metrics": {m: e["metrics"][m] for m in [*lower, *higher]},
                }
            )
    front.sort(key=lambda f: f["monthly_cost_usd"])
    return front


__all__ = ["Search", "SearchResult", "Space", "best_by_gpu", "exhaustive", "objective_metrics", "pareto"]
