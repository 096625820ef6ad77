"""Sweeps: one experiment run at every point of a grid of values, with a table across the points.

    OUT/config.yaml          the base config, its `sweep:` section holding the whole grid
    OUT/points/NNN_KEY=V/    a normal results folder per point (config.yaml reproduces that point alone)
    OUT/sweep.parquet|csv    one row per point: the swept values, each metric's mean and 95% t interval,
                             P(meet all plan targets) with its Wilson interval
    OUT/sweep.json           the same, plus paired differences of every point against the first
    OUT/report.html          one row per point, each target metric charted against the swept values

Every point runs replications 0..n-1 of the same root seed (common random numbers), so the difference
between two points is estimated replication by replication (sim.stats.paired_difference).
Resumable: with `--resume`, finished points (summary.json present, same config) are kept and the others
resume from their `.partial` checkpoints.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.config import Experiment
from sim.core.metrics import METRICS
from sim.core.stats import paired_difference
from sim.engine.loading import resolved_yaml
from sim.engine.variants import derive, format_value

POINTS_DIR = "points"


@dataclass
class SweepPoint:
    index: int
    changes: list[tuple[str, Any]]
    exp: Experiment
    folder: Path
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[int, dict[str, Any]] = field(default_factory=dict)  # replication -> metrics

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.changes)


def grid(sweep: dict[str, list[Any]]) -> list[list[tuple[str, Any]]]:
    """Every combination of the swept values, the first key varying slowest."""
    keys = list(sweep)
    return [list(zip(keys, combo, strict=True)) for combo in itertools.product(*(sweep[k] for k in keys))]


def point_dirname(index: int, changes: list[tuple[str, Any]]) -> str:
    text = "__".join(f"{k}={format_value(v)}" for k, v in changes)
    return f"{index:03d}_" + re.sub(r"[^A-Za-z0-9._=+-]", "_", text)[:150]


def expand(exp: Experiment, root: Path, base_dir: Path | None = None) -> list[SweepPoint]:
    """The points of exp.sweep (raises ConfigError on a bad key or value)."""
    return [
        SweepPoint(i, ch, derive(exp, ch, base_dir), root / POINTS_DIR / point_dirname(i, ch))
        for i, ch in enumerate(grid(exp.sweep))
    ]


def load_finished(point: SweepPoint) -> bool:
    """A point finished by an earlier run of the same sweep: load its summary and per-replication metrics."""
    summary_path, cfg_path = point.folder / "summary.json", point.folder / "config.yaml"
    table_path = point.folder / "replications.parquet"
    if not (summary_path.exists() and cfg_path.exists() and table_path.exists()):
        return False
    if cfg_path.read_text(encoding="utf-8") != resolved_yaml(point.exp):
        return False
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    if summary.get("replications") != point.exp.replications:
        return False
    point.summary = summary
    point.metrics = replication_metrics(point.folder)
    return True


def replication_metrics(folder: Path) -> dict[int, dict[str, Any]]:
    """replication -> its metrics, from a results folder's replications.parquet (None where undefined)."""
    table = pd.read_parquet(folder / "replications.parquet")
    names = [m for m in METRICS if m in table.columns]
    return {
        int(row["replication"]): {m: _none_if_nan(row[m]) for m in names} for row in table.to_dict(orient="records")
    }


def _none_if_nan(v: Any) -> Any:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return None if f != f else f


def _jsonable(v: Any) -> Any:
    return v if isinstance(v, (bool, int, float, str)) or v is None else str(v)


def sweep_table(exp: Experiment, points: list[SweepPoint]) -> tuple[pd.DataFrame, dict[str, Any]]:
    keys = list(exp.sweep)
    rows: list[dict[str, Any]] = []
    docs: list[dict[str, Any]] = []
    for p in points:
        row: dict[str, Any] = {"point": p.index, "folder": str(p.folder.relative_to(p.folder.parent.parent))}
        for k in keys:
            row[k] = _jsonable(p.values[k])
        summ = p.summary.get("metrics", {})
        for m in METRICS:
            s = summ.get(m, {})
            row[m] = s.get("mean")
            row[f"{m}.ci95_low"] = s.get("ci95_low")
            row[f"{m}.ci95_high"] = s.get("ci95_high")
        t_all = p.summary.get("targets", {}).get("all")
        if t_all:
            row["p_meet"] = t_all["p_meet"]
            row["p_meet.wilson95_low"] = t_all["wilson95_low"]
            row["p_meet.wilson95_high"] = t_all["wilson95_high"]
        rows.append(row)
        docs.append(
            {
                "point": p.index,
                "folder": row["folder"],
                "values": {k: _jsonable(p.values[k]) for k in keys},
                "replications": p.summary.get("replications"),
                "metrics": {m: {k: summ.get(m, {}).get(k) for k in ("mean", "ci95_low", "ci95_high")} for m in METRICS},
                "targets": p.summary.get("targets"),
            }
        )
    table = pd.DataFrame(rows)
    for k in keys:  # parquet needs one type per column
        if table[k].map(type).nunique() > 1:
            table[k] = table[k].map(lambda v: None if v is None else str(v))
    doc = {
        "name": exp.name,
        "seed": exp.seed,
        "replications": exp.replications,
        "keys": keys,
        "points": docs,
        "paired_vs_first": paired_vs_first(points),
    }
    return table, doc


def paired_vs_first(points: list[SweepPoint]) -> list[dict[str, Any]]:
    """Every point minus the first, replication by replication (common random numbers), 95% t intervals."""
    if len(points) < 2:
        return []
    base = points[0]
    out = []
    for p in points[1:]:
        common = sorted(set(p.metrics) & set(base.metrics))
        diffs = {
            m: paired_difference([p.metrics[r].get(m) for r in common], [base.metrics[r].get(m) for r in common])
            for m in METRICS
        }
        out.append({"point": p.index, "minus_point": base.index, "replications": len(common), "differences": diffs})
    return out
