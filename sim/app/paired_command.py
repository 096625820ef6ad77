"""`capsim paired`: a CRN comparison of two variants, printed or as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sim.config import Experiment
from sim.engine.executor import Executor
from sim.engine.variants import derive
from sim.studies.paired import DEFAULT_METRICS, compare


def print_compare(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from sim.app.summary_table import _fmt

    key = doc["key"]
    t = Table(
        title=f"{key}: {doc['b']} minus {doc['a']} (B - A), {doc['replications']} replications, common random numbers"
    )
    cols = ["metric", f"A: mean ({doc['a']})", f"B: mean ({doc['b']})", "paired difference B - A (95% CI)"]
    indep = any("independent" in e for e in doc["metrics"].values())
    if indep:
        cols += ["independent seeds (95% CI)", "Var ratio indep/common (95% CI)"]
    for c in cols:
        t.add_column(c, justify="left" if c == "metric" else "right")

    def ci(d: dict[str, Any]) -> str:
        if d["mean"] is None:
            return "n/a"
        return f"{_fmt(d['mean'])} ({_fmt(d['ci_low'])} .. {_fmt(d['ci_high'])})"

    for name, e in doc["metrics"].items():
        row = [name, _fmt(e["mean_a"]), _fmt(e["mean_b"]), ci(e["paired"])]
        if indep:
            vr = e["variance_reduction"]
            ratio = "-" if vr["ratio"] is None else f"{vr['ratio']:.3g}"
            if vr.get("ratio_ci95_low") is not None:
                ratio += f" ({vr['ratio_ci95_low']:.3g} .. {vr['ratio_ci95_high']:.3g})"
            row += [ci(e["independent"]), ratio]
        t.add_row(*row)
    Console(width=170).print(t)


def run_compare_command(
    exp: Experiment,
    vary_text: str,
    reps: int,
    metrics: Sequence[str] | None,
    independent: bool,
    executor: Executor,
    as_json: bool,
    base_dir: Any,
) -> int:
    """`capsim paired`: 0 ok, 2 bad arguments."""
    import json
    import sys

    from sim.config.errors import ConfigError
    from sim.core.metrics import METRIC_NAMES
    from sim.engine.variants import parse_assignment_list

    try:
        key, values = parse_assignment_list(vary_text)
        if len(values) != 2:
            raise ValueError(f"--vary: give exactly two values (KEY=A,B), got {len(values)}")
        names = list(metrics) if metrics else list(DEFAULT_METRICS)
        unknown = [m for m in names if m not in METRIC_NAMES]
        if unknown:
            raise ValueError(f"--metric: unknown metric(s): {', '.join(unknown)}")
        for v in values:
            derive(exp, [(key, v)], base_dir)
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    except ConfigError as exc:
        for p in exc.problems:
            sys.stderr.write(f"--vary {vary_text}: {p.path}: {p.message}\n")
        return 2
    with executor.session() as session:
        doc = compare(exp, key, values[0], values[1], reps, names, independent, session)
    if as_json:
        sys.stdout.write(json.dumps(doc, allow_nan=False) + "\n")
    else:
        print_compare(doc)
    return 0
