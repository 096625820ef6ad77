"""`capsim plan`: parse the options, run the search, print and write plan.json (and the frontier chart)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.app.study_output import StudyOutput, checked, err
from sim.config import Experiment
from sim.engine.variants import derive, format_value
from sim.studies.plan import PlanOptions, resolve_options
from sim.studies.screens import memory_problem
from sim.studies.search import Search, Space


def print_plan(doc: dict[str, Any], stream: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, width=150)
    dims = doc.get("dimensions") or []
    multi = not (len(dims) == 1 and "range" in dims[0])
    t = Table(title=f"plan: {doc['key']} for {', '.join(doc['targets'])} with probability >= {doc['confidence']:g}")
    for col in ("point" if multi else "value", "replications", "P(meet)", f"Wilson {doc['interval_level']:.0%}"):
        t.add_column(col, justify="right")
    t.add_column("decision", justify="right")
    t.add_column("monthly cost", justify="right")
    best = (doc.get("best") or {}).get("values")
    for e in doc["tried"]:
        mark = " <- answer" if e["values"] == best else ""
        t.add_row(
            _point(e["values"]) if multi else f"{e['value']:g}",
            str(e["replications"]),
            f"{e['met']}/{e['replications']} = {e['p_meet']:.3f}",
            f"{e['p_meet_low']:.3f} .. {e['p_meet_high']:.3f}",
            e["decision"] + mark,
            _usd(e["monthly_cost_usd"]),
        )
    console.print(t)
    if doc.get("screened"):
        console.print(f"screened without simulating: {len(doc['screened'])} point(s) or column(s)")
    if multi and doc.get("pareto"):
        pt = Table(title="Pareto frontier (monthly cost vs the targets' metrics and availability; means, 95% CI)")
        pt.add_column("point")
        pt.add_column("monthly cost", justify="right")
        names = list(doc["pareto"][0]["metrics"])
        for name in names:
            pt.add_column(name, justify="right")
        pt.add_column("P(meet)", justify="right")
        for f in doc["pareto"]:
            pt.add_row(
                _point(f["values"]),
                _usd(f["monthly_cost_usd"]),
                *[_ci(f["metrics"][n]) for n in names],
                f"{f['p_meet']:.2f} ({f['p_meet_wilson'][0]:.2f}..{f['p_meet_wilson'][1]:.2f}) {f['decision']}",
            )
        console.print(pt)
    if multi and doc.get("best_by_gpu"):
        gt = Table(title="best point per GPU type")
        for col in ("GPU", "point", "monthly cost", "95% CI", "P(meet)"):
            gt.add_column(col, justify="right")
        for gpu, b in sorted(doc["best_by_gpu"].items(), key=lambda kv: kv[1]["monthly_cost_usd"]):
            lo, hi = b["monthly_cost_ci95"] or (None, None)
            gt.add_row(
                gpu, _point(b["values"]), _usd(b["monthly_cost_usd"]), f"{_usd(lo)} .. {_usd(hi)}", f"{b['p_meet']:.2f}"
            )
        console.print(gt)
    if doc["best"] is None:
        console.print(f"no point of {doc['key']} meets the targets")
        return
    lo, hi = doc["monthly_cost_ci95"] or (None, None)
    band = f" (95% CI ${lo:,.0f} .. ${hi:,.0f})" if lo is not None and hi is not None and hi > lo else ""
    what = _point(doc["best"]["values"]) if multi else f"{doc['key']} = {doc['value']:g}"
    console.print(f"answer: {what}, monthly cost ${doc['monthly_cost_usd']:,.0f}{band}")


def _point(values: dict[str, Any]) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={format_value(v)}" for k, v in values.items())


def _usd(v: float | None) -> str:
    return "-" if v is None else f"${v:,.0f}"


def _ci(m: dict[str, Any]) -> str:
    if m["mean"] is None:
        return "-"
    lo, hi = m["ci95"] or (None, None)
    return f"{m['mean']:.4g}" + (f" ({lo:.3g}..{hi:.3g})" if lo is not None and hi is not None and hi > lo else "")


def check_space(exp: Experiment, space: Space, max_reps: int, screens: bool, base_dir: Path | None) -> None:
    """Every column of the space, at the searched range's ends and the most replications the search may run,
    checked before any replication (ConfigError); columns whose model does not fit are left to the screen."""
    for col in space.columns():
        changes = [*col, ("replications", max_reps)]
        if screens and memory_problem(derive(exp, changes, base_dir, checks=False)) is not None:
            continue
        ends = (
            [space.searched.value(space.searched.lo), space.searched.value(space.searched.hi)] if space.searched else []
        )
        for v in dict.fromkeys(ends) if ends else [None]:
            derive(exp, changes + ([(space.searched.key, v)] if space.searched else []), base_dir)


def run_plan_command(
    exp: Experiment,
    vary_texts: Sequence[str],
    target_texts: Sequence[str] | None,
    confidence: float | None,
    reps: int,
    max_reps: int,
    tol: float | None,
    io: StudyOutput,
    screens: bool = True,
    cost_screen: bool = False,
) -> int:
    """`capsim plan`: 0 found, 2 bad arguments, 3 no point in the space meets the targets."""

    def check() -> tuple[Space, PlanOptions]:
        space = Space.parse(vary_texts)
        options = resolve_options(exp, target_texts, confidence, reps, max_reps, tol, screens, cost_screen)
        check_space(exp, space, max_reps, screens, io.base_dir)
        return space, options

    parsed = checked(check, prefix=f"--vary {' --vary '.join(vary_texts)}: ")
    if parsed is None:
        return 2
    space, options = parsed
    with io.executor.session() as executor:
        result = Search(exp, space, options, executor, io.base_dir, lambda msg: io.log(f"  {msg}")).run()
    doc = result.to_json()
    io.write(exp, "plan.json", doc)
    if io.out is not None and doc["tried"]:
        from sim.report.charts_frontier import write_frontier_chart

        write_frontier_chart(doc, Path(io.out) / "frontier.png")
    io.show(doc, print_plan)
    if doc["best"] is None:
        targets = ", ".join(map(str, options.targets))
        r = space.searched
        if r is not None and not space.enumerated:
            err(f"no value of {r.key} in {r.lo:g}..{r.hi:g} meets {targets}")
        else:
            err(f"no point of {' x '.join(space.keys)} meets {targets}")
        return 3
    return 0
