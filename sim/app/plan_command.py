"""`capsim plan`: parse the options, run the planner, print and write plan.json."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.config import Experiment
from sim.engine.dask_cluster import executor_address
from sim.engine.variants import derive
from sim.studies.plan import Planner, VaryRange, resolve_targets


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
    workers: int | None,
    executor: str,
    address: str | None,
    as_json: bool,
    quiet: bool,
    out: Path | None,
    base_dir: Path | None,
) -> int:
    """`capsim plan`: 0 found, 2 bad arguments, 3 no value in range meets the targets."""
    import json
    import sys

    from sim.config.errors import ConfigError
    from sim.core.atomic import write_text_atomic

    def err(msg: str) -> None:
        sys.stderr.write(msg.rstrip("\n") + "\n")

    try:
        vary = VaryRange.parse(vary_text)
        targets, p = resolve_targets(exp, target_texts, confidence)
        if max_reps < reps:
            raise ValueError(f"--max-reps ({max_reps}) must be >= --reps ({reps})")
        if tol is not None and not (math.isfinite(tol) and tol > 0):
            raise ValueError(f"--tol: must be > 0, got {tol}")
        for v in {vary.lo, vary.hi}:  # the range's ends at the most replications the search may run
            derive(exp, [(vary.key, vary.value(v)), ("replications", max_reps)], base_dir)
    except ValueError as exc:
        err(str(exc))
        return 2
    except ConfigError as exc:
        for prob in exc.problems:
            err(f"--vary {vary_text}: {prob.path}: {prob.message}")
        return 2
    progress = (lambda msg: None) if (quiet or as_json) else (lambda msg: err(f"  {msg}"))
    with executor_address(executor, address, workers) as addr:
        planner = Planner(exp, vary, targets, p, reps, max_reps, tol, workers, executor, addr, base_dir, progress)
        result = planner.search()
    doc = result.to_json()
    text = json.dumps(doc, allow_nan=False)
    if out is not None:
        from sim.engine.loading import resolved_yaml

        write_text_atomic(Path(out) / "plan.json", json.dumps(doc, indent=2, allow_nan=False) + "\n")
        write_text_atomic(Path(out) / "config.yaml", resolved_yaml(exp))  # the report's Experiment section
    if as_json:
        sys.stdout.write(text + "\n")
    else:
        print_plan(doc)
    if result.value is None:
        err(f"no value of {vary.key} in {vary.lo:g}..{vary.hi:g} meets {', '.join(map(str, targets))}")
        return 3
    return 0
