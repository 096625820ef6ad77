"""The summary table printed after a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sim.core.metrics import HEADLINE
from sim.core.units import fmt_share, is_share


def _fmt(v: Any, metric: str = "") -> str:
    """A table cell; a share (availability, ...) with enough digits to tell 0.999 from 0.99995."""
    if v is None:
        return "n/a"
    v = float(v)
    if metric and is_share(metric) and 0.0 <= v <= 1.0:
        return fmt_share(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.4g}"


def print_summary(summary: dict[str, Any], folder: Path) -> None:
    console = Console(width=130)
    t = Table(
        title=f"{summary['name']}: {summary['replications']} replications x {summary['horizon_h']} h, "
        f"seed {summary['seed']}"
    )
    for col in ("metric", "mean", "95% CI (t)", "95% CI (bootstrap)", "p5", "p50", "p95"):
        t.add_column(col, justify="right" if col != "metric" else "left")
    for name in HEADLINE:
        m = summary["metrics"].get(name)
        if not m:
            continue
        t.add_row(
            name,
            _fmt(m["mean"], name),
            f"{_fmt(m['ci95_low'], name)} .. {_fmt(m['ci95_high'], name)}",
            f"{_fmt(m['boot95_low'], name)} .. {_fmt(m['boot95_high'], name)}" if "boot95_low" in m else "",
            _fmt(m["p5"], name),
            _fmt(m["p50"], name),
            _fmt(m["p95"], name),
        )
    console.print(t)
    if summary.get("targets"):
        console.print(targets_table(summary["targets"]))
    console.print(f"results: {folder}")


def targets_table(targets: dict[str, Any]) -> Table:
    """P(meet) per plan target and for all of them, with Wilson intervals, the normal tolerance bound of the
    metric, and the decision (by count when the Wilson interval decides, else by the tolerance bound)."""
    level = targets.get("interval_level", 0.95)
    p = targets["confidence"]
    t = Table(
        title=f"targets: does a share >= {p:g} of simulated days meet them? ({level:.0%} confidence)",
        caption=_needed_caption(targets),
    )
    cols = ("target", "met / n", "P(meet)", f"Wilson {level:.0%}", "by count", f"bound on {p:.0%} of days", "decision")
    for col in cols:
        t.add_column(col, justify="left" if col == "target" else "right")
    rows = [(i["target"], i) for i in targets["items"]] + [("all targets", targets["all"])]
    for label, i in rows:
        tol = i.get("tolerance") or {}
        metric = i.get("metric", "")
        bound = tol.get("bound")
        decision = i.get("decision", i["verdict"])
        if i.get("decided_by") == "tolerance":
            decision += " (bound)"
        t.add_row(
            label,
            f"{i['met']} / {i['n']}",
            _fmt(i["p_meet"]),
            f"{i['wilson95_low']:.3f} .. {i['wilson95_high']:.3f}",
            i["verdict"],
            "-" if bound is None else _fmt(bound, metric),
            decision,
        )
    return t


def _needed_caption(targets: dict[str, Any]) -> str | None:
    every = targets["all"]
    lines = []
    if every.get("verdict") == "undecided" and every.get("replications_needed"):
        lines.append(
            f"by count alone, a decision at this share needs {every['replications_needed']} replications "
            f"(--reps {every['replications_needed']})"
        )
    if any(i.get("decided_by") == "tolerance" for i in [*targets["items"], every]):
        lines.append("(bound): decided by the normal tolerance bound of the metric across replications")
    return "; ".join(lines) or None
