"""`capsim run` over a grid: one results folder per point, the sweep table, printed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.app.run_command import execute, in_locked_folder
from sim.config import Experiment
from sim.core.atomic import UnsafePath, ensure_subdirs, write_atomic, write_text_atomic
from sim.engine.checkpoints import CheckpointRefused
from sim.engine.executor import Executor
from sim.engine.loading import resolved_yaml
from sim.engine.results import ResultsFolder, ResumeMismatch, default_out_dir
from sim.engine.variants import format_value
from sim.studies.sweep import POINTS_DIR, SweepPoint, expand, load_finished, replication_metrics, sweep_table

if TYPE_CHECKING:
    from sim.app.progress import Progress


def run_sweep(
    exp: Experiment,
    out: Path | None = None,
    executor: Executor | None = None,
    as_json: bool = False,
    quiet: bool = False,
    resume: bool = False,
    base_dir: Path | None = None,
) -> int:
    root = Path(out) if out is not None else default_out_dir(exp)
    return in_locked_folder(
        root, lambda: _run_sweep_locked(exp, root, executor or Executor(), as_json, quiet, resume, base_dir)
    )


def _run_sweep_locked(
    exp: Experiment,
    root: Path,
    executor: Executor,
    as_json: bool,
    quiet: bool,
    resume: bool,
    base_dir: Path | None,
) -> int:
    from sim.app.progress import Progress

    cfg = root / "config.yaml"
    if resume and cfg.exists():
        from sim.engine.loading import load_config_text

        previous = load_config_text(cfg.read_text(encoding="utf-8"), base_dir=base_dir)
        if previous.model_copy(update={"replications": exp.replications}) != exp:
            sys.stderr.write(f"--resume: {cfg} holds a different sweep; resume needs the same config and grid\n")
            return 2
    write_text_atomic(cfg, resolved_yaml(exp))
    points = expand(exp, root, base_dir)
    finished = {p.index for p in points if resume and load_finished(p)}
    total = len(points) * exp.replications
    progress = Progress(
        total=total,
        done=len(finished) * exp.replications,
        enabled=not quiet and not as_json,
        label=f"{exp.name} sweep",
    )
    try:
        with progress, executor.session() as session:
            for p in points:
                if p.index not in finished:
                    _run_point(p, resume, session, progress)
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
    executor: Executor,
    progress: Progress,
) -> None:
    ensure_subdirs(p.folder.parent.parent, POINTS_DIR, p.folder.name)  # no symlinked points/ or point folder
    p.summary = execute(
        p.exp,
        ResultsFolder(p.folder),
        resume=resume,
        executor=executor,
        progress=progress,
        report=p.exp.output.report,
        point=p.values,
    )
    p.metrics = replication_metrics(p.folder)  # as for a point finished by an earlier run (load_finished)


SWEEP_HEADLINE = ["ttft_p95_s", "peak_ttft_p95_s", "availability", "gpu_utilization", "monthly_cost_usd"]


def print_sweep(doc: dict[str, Any], root: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from sim.app.summary_table import _fmt

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
