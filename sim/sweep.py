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
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.atomic import UnsafePath, ensure_subdirs, write_atomic, write_text_atomic
from sim.checkpoints import CheckpointRefused
from sim.config import Experiment
from sim.config.loader import resolved_yaml
from sim.dask_executor import executor_address
from sim.folder_lock import FolderLocked, lock_folder
from sim.metrics_catalog import METRICS
from sim.results import ResultsFolder, ResumeMismatch, check_out_dir, default_out_dir
from sim.runner import run_replications
from sim.stats import paired_difference
from sim.variants import derive, format_value

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


def _load_finished(point: SweepPoint) -> bool:
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
    table = pd.read_parquet(table_path)
    names = [m for m in METRICS if m in table.columns]
    for row in table.to_dict(orient="records"):
        point.metrics[int(row["replication"])] = {m: _none_if_nan(row[m]) for m in names}
    return True


def _none_if_nan(v: Any) -> Any:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return None if f != f else f


def run_sweep(
    exp: Experiment,
    out: Path | None = None,
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
    as_json: bool = False,
    quiet: bool = False,
    resume: bool = False,
    base_dir: Path | None = None,
) -> int:
    root = Path(out) if out is not None else default_out_dir(exp)
    try:
        check_out_dir(root)
        with lock_folder(root):
            return _run_sweep_locked(exp, root, workers, executor, address, as_json, quiet, resume, base_dir)
    except (ResumeMismatch, FolderLocked) as exc:
        sys.stderr.write(f"--out: {exc}\n")
        return 2


def _run_sweep_locked(
    exp: Experiment,
    root: Path,
    workers: int | None,
    executor: str,
    address: str | None,
    as_json: bool,
    quiet: bool,
    resume: bool,
    base_dir: Path | None,
) -> int:
    from sim.progress import Progress

    cfg = root / "config.yaml"
    if resume and cfg.exists():
        from sim.config.loader import load_config_text

        previous = load_config_text(cfg.read_text(encoding="utf-8"), base_dir=base_dir)
        if previous.model_copy(update={"replications": exp.replications}) != exp:
            sys.stderr.write(f"--resume: {cfg} holds a different sweep; resume needs the same config and grid\n")
            return 2
    write_text_atomic(cfg, resolved_yaml(exp))
    points = expand(exp, root, base_dir)
    finished = {p.index for p in points if resume and _load_finished(p)}
    total = len(points) * exp.replications
    progress = Progress(
        total=total,
        done=len(finished) * exp.replications,
        enabled=not quiet and not as_json,
        label=f"{exp.name} sweep",
    )
    try:
        with progress, executor_address(executor, address, workers) as addr:
            for p in points:
                if p.index not in finished:
                    _run_point(p, resume, workers, executor, addr, progress.advance, progress.partial)
    except KeyboardInterrupt:
        sys.stderr.write(
            f"interrupted: finished points and replications are saved in {root}; "
            f"finish with: capsim run CONFIG --sweep ... --out {root} --resume\n"
        )
        return 130
    except (ResumeMismatch, CheckpointRefused, UnsafePath) as exc:
        sys.stderr.write(f"--resume: {exc}\n" if resume else f"--out: {exc}\n")
        return 2
    table, doc = sweep_table(exp, points)
    write_atomic(root / "sweep.parquet", lambda fh: table.to_parquet(fh, index=False))
    write_atomic(root / "sweep.csv", lambda fh: table.to_csv(fh, index=False))
    write_text_atomic(root / "sweep.json", json.dumps(doc, indent=2, allow_nan=False) + "\n")
    if exp.output.report:
        from sim.report.sweep_page import write_sweep_report

        write_sweep_report(root)
    if as_json:
        sys.stdout.write(json.dumps(doc, allow_nan=False) + "\n")
    else:
        print_sweep(doc, root)
    return 0


def _run_point(
    p: SweepPoint,
    resume: bool,
    workers: int | None,
    executor: str,
    address: str | None,
    tick: Callable[[], None],
    partial: Callable[[float], None] | None = None,
) -> None:
    ensure_subdirs(p.folder.parent.parent, POINTS_DIR, p.folder.name)  # no symlinked points/ or point folder
    folder = ResultsFolder(p.folder)
    done = folder.prepare(p.exp, resume)
    results = {r: done[r] for r in range(p.exp.replications) if r in done}
    for _ in results:
        tick()
    todo = [r for r in range(p.exp.replications) if r not in results]
    for res in run_replications(p.exp, todo, workers=workers, executor=executor, address=address, on_partial=partial):
        folder.checkpoint(res)
        results[res.replication] = res
        tick()
    p.summary = folder.write_final(p.exp, list(results.values()), point=p.values)
    p.metrics = {r: dict(res.metrics) for r, res in results.items()}
    if p.exp.output.report:
        from sim.report import write_report

        write_report(p.folder)
    folder.clear_partial()


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


SWEEP_HEADLINE = ["ttft_p95_s", "peak_ttft_p95_s", "availability", "gpu_utilization", "monthly_cost_usd"]


def print_sweep(doc: dict[str, Any], root: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from sim.summary_table import _fmt

    t = Table(title=f"{doc['name']}: sweep of {', '.join(doc['keys'])} ({doc['replications']} replications each)")
    for k in doc["keys"]:
        t.add_column(k.split(".")[-1], justify="right")
    for m in SWEEP_HEADLINE:
        t.add_column(m, justify="right")
    t.add_column("P(meet)", justify="right")
    for p in doc["points"]:
        cells = [format_value(p["values"][k]) for k in doc["keys"]]
        for m in SWEEP_HEADLINE:
            s = p["metrics"][m]
            cells.append(
                "n/a" if s["mean"] is None else f"{_fmt(s['mean'])} ({_fmt(s['ci95_low'])}..{_fmt(s['ci95_high'])})"
            )
        ta = (p.get("targets") or {}).get("all")
        cells.append("-" if not ta else f"{ta['met']}/{ta['n']}")
        t.add_row(*cells)
    Console(width=200).print(t)
    Console().print(
        f"results: {root} (report.html, sweep.parquet, sweep.json; one folder per point under {POINTS_DIR}/)"
    )
