"""`capsim compare DIR_A DIR_B`: two runs' metrics side by side, and their difference B - A.

When both runs share the seed, replication r of A and replication r of B saw the same random numbers
(common random numbers), so the difference is estimated per replication, joined on `replication`, with
sim.stats.paired_difference: far tighter than comparing two intervals. Otherwise the difference of the
means gets a Welch interval from the per-replication values.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from sim.core.metrics import METRICS
from sim.core.stats import clean_values, paired_difference
from sim.report.data import ReportData, folder_problem, load


class NotComparable(Exception):
    """A folder that is not the results folder of a `capsim run` (no summary.json)."""


def _load_run(folder: Path) -> ReportData:
    folder = Path(folder)
    if not (folder / "summary.json").is_file():
        raise NotComparable(f"{folder}: not a capsim results folder (no summary.json)")
    problem = folder_problem(folder)
    if problem:
        raise NotComparable(f"{folder}: {problem}")
    data = load(folder)
    if not data.summary:
        raise NotComparable(f"{folder}: summary.json is unreadable")
    return data


def _welch(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> dict[str, float | int | None]:
    """Mean of b minus mean of a with a Welch-Satterthwaite t interval."""
    out: dict[str, float | int | None] = {"mean": None, "ci_low": None, "ci_high": None, "n": int(min(a.size, b.size))}
    if a.size == 0 or b.size == 0:
        return out
    d = float(b.mean() - a.mean())
    out["mean"] = d
    if a.size < 2 or b.size < 2:
        return out
    va, vb = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        out["ci_low"] = out["ci_high"] = d
        return out
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(sps.t.ppf(0.5 + confidence / 2.0, dof)) * se
    out["ci_low"], out["ci_high"] = d - half, d + half
    return out


def _side(m: dict[str, Any] | None) -> dict[str, Any] | None:
    if not m:
        return None
    return {k: m.get(k) for k in ("mean", "ci95_low", "ci95_high", "n")}


def _who(d: ReportData) -> dict[str, Any]:
    s = d.summary or {}
    return {"folder": str(d.folder), "name": d.name, "seed": s.get("seed"), "replications": s.get("replications")}


def compare(dir_a: Path, dir_b: Path) -> dict[str, Any]:
    a, b = _load_run(dir_a), _load_run(dir_b)
    sa, sb = a.summary or {}, b.summary or {}
    ma, mb = sa.get("metrics", {}) or {}, sb.get("metrics", {}) or {}
    names = [n for n in METRICS if n in ma or n in mb]
    names += [n for n in list(ma) + list(mb) if n not in METRICS and n not in names]
    names = list(dict.fromkeys(names))
    joined: pd.DataFrame | None = None
    paired = False
    if (
        sa.get("seed") is not None
        and sa.get("seed") == sb.get("seed")
        and a.reps is not None
        and b.reps is not None
        and "replication" in a.reps.columns
        and "replication" in b.reps.columns
    ):
        joined = a.reps.merge(b.reps, on="replication", suffixes=("__a", "__b"))
        paired = len(joined) >= 1
    rows: dict[str, Any] = {}
    for n in names:
        entry: dict[str, Any] = {"a": _side(ma.get(n)), "b": _side(mb.get(n))}
        diff: dict[str, Any] | None = None
        if paired and joined is not None and f"{n}__a" in joined.columns and f"{n}__b" in joined.columns:
            diff = paired_difference(joined[f"{n}__b"].tolist(), joined[f"{n}__a"].tolist())
        elif not paired and a.reps is not None and b.reps is not None and n in a.reps.columns and n in b.reps.columns:
            diff = _welch(clean_values(a.reps[n].tolist()), clean_values(b.reps[n].tolist()))
        elif entry["a"] and entry["b"] and entry["a"]["mean"] is not None and entry["b"]["mean"] is not None:
            diff = {"mean": entry["b"]["mean"] - entry["a"]["mean"], "ci_low": None, "ci_high": None, "n": None}
        if diff is not None:
            diff = {k: diff.get(k) for k in ("mean", "ci_low", "ci_high", "n")}
        entry["diff"] = diff
        base = entry["a"]["mean"] if entry["a"] else None
        entry["relative"] = (
            diff["mean"] / base if diff and diff.get("mean") is not None and base not in (None, 0) else None
        )
        lo, hi = (diff or {}).get("ci_low"), (diff or {}).get("ci_high")
        entry["significant"] = (lo > 0 or hi < 0) if lo is not None and hi is not None else None
        rows[n] = entry
    return {
        "a": _who(a),
        "b": _who(b),
        "difference": "b - a",
        "paired": paired,
        "pairs": int(len(joined)) if paired and joined is not None else 0,
        "method": "paired" if paired else "welch",
        "confidence": 0.95,
        "metrics": rows,
    }


def print_compare(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from sim.report.page import fmt_metric

    a, b = result["a"], result["b"]
    how = (
        f"paired on {result['pairs']} common replications (seed {a['seed']})"
        if result["paired"]
        else "unpaired: different seeds, Welch intervals"
    )
    t = Table(title=f"A = {a['name']} ({a['folder']})  vs  B = {b['name']} ({b['folder']})\nB - A, {how}, 95% CI")
    for col in ("metric", "A mean [95% CI]", "B mean [95% CI]", "B - A [95% CI]", "change"):
        t.add_column(col, justify="left" if col == "metric" else "right")

    def side(n: str, s: dict[str, Any] | None) -> str:
        if not s:
            return "-"
        return f"{fmt_metric(n, s['mean'])} [{fmt_metric(n, s['ci95_low'])}, {fmt_metric(n, s['ci95_high'])}]"

    for n, e in result["metrics"].items():
        d = e["diff"]
        if d and d.get("mean") is not None:
            dtxt = _signed(n, d["mean"])
            if d.get("ci_low") is not None:
                dtxt += f" [{_signed(n, d['ci_low'])}, {_signed(n, d['ci_high'])}]"
        else:
            dtxt = "-"
        rel = f"{e['relative'] * 100:+.1f}%" if e.get("relative") is not None else "-"
        style = "bold" if e.get("significant") else None
        t.add_row(n, side(n, e["a"]), side(n, e["b"]), dtxt, rel, style=style)
    Console(width=160).print(t)
    Console(width=160).print("bold rows: the 95% interval of B - A excludes 0")


def _signed(name: str, v: float) -> str:
    """A difference with its sign: fractions in percentage points, small money and counts with 3 digits."""
    from sim.core.units import is_share
    from sim.report.page import fmt_metric

    if v == 0:
        return "0"
    sign = "+" if v > 0 else "-"
    x = abs(v)
    base = name.split(".", 1)[0]
    if is_share(base):
        return f"{sign}{x * 100:.3g} pp"
    if base.endswith("_usd") and x < 100:
        return f"{sign}${x:.3g}"
    if not base.endswith("_s") and x < 100:
        return f"{sign}{x:.3g}"
    return sign + fmt_metric(name, x)
