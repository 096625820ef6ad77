"""`capsim plan`: parse the options, run the planner, print and write plan.json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sim.app.study_output import StudyOutput, checked, err
from sim.config import Experiment
from sim.engine.variants import derive
from sim.studies.plan import Planner, PlanOptions, VaryRange, resolve_options


def print_plan(doc: dict[str, Any], stream: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, width=130)
    t = Table(title=f"plan: {doc['key']} for {', '.join(doc['targets'])} with probability >= {doc['confidence']:g}")
    for col in ("value", "replications", "P(meet)", f"Wilson {doc['interval_level']:.0%}", "decision", "monthly cost"):
        t.add_column(col, justify="right")
    for e in doc["tried"]:
        mark = " <- answer" if e["value"] == doc["value"] else ""
        t.add_row(
            f"{e['value']:g}",
            str(e["replications"]),
            f"{e['met']}/{e['replications']} = {e['p_meet']:.3f}",
            f"{e['p_meet_low']:.3f} .. {e['p_meet_high']:.3f}",
            e["decision"] + mark,
            "-" if e["monthly_cost_usd"] is None else f"${e['monthly_cost_usd']:,.0f}",
        )
    console.print(t)
    if doc["value"] is None:
        console.print(f"no value of {doc['key']} in range meets the targets")
    else:
        lo, hi = doc["monthly_cost_ci95"] or (None, None)
        band = f" (95% CI ${lo:,.0f} .. ${hi:,.0f})" if lo is not None and hi is not None and hi > lo else ""
        console.print(f"answer: {doc['key']} = {doc['value']:g}, monthly cost ${doc['monthly_cost_usd']:,.0f}{band}")


def run_plan_command(
    exp: Experiment,
    vary_text: str,
    target_texts: Sequence[str] | None,
    confidence: float | None,
    reps: int,
    max_reps: int,
    tol: float | None,
    io: StudyOutput,
) -> int:
    """`capsim plan`: 0 found, 2 bad arguments, 3 no value in range meets the targets."""

    def check() -> tuple[VaryRange, PlanOptions]:
        vary = VaryRange.parse(vary_text)
        options = resolve_options(exp, target_texts, confidence, reps, max_reps, tol)
        for v in {vary.lo, vary.hi}:  # the range's ends at the most replications the search may run
            derive(exp, [(vary.key, vary.value(v)), ("replications", max_reps)], io.base_dir)
        return vary, options

    parsed = checked(check, prefix=f"--vary {vary_text}: ")
    if parsed is None:
        return 2
    vary, options = parsed
    with io.executor.session() as executor:
        planner = Planner(exp, vary, options, executor, io.base_dir, lambda msg: io.log(f"  {msg}"))
        result = planner.search()
    doc = result.to_json()
    io.write(exp, "plan.json", doc)
    io.show(doc, print_plan)
    if result.value is None:
        targets = ", ".join(map(str, options.targets))
        err(f"no value of {vary.key} in {vary.lo:g}..{vary.hi:g} meets {targets}")
        return 3
    return 0
