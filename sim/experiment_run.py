"""`capsim run`: fan out the replications, checkpoint each, write the folder, print the summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sim.config import Experiment
from sim.replication import ReplicationResult
from sim.results import ResultsFolder, ResumeMismatch, default_out_dir
from sim.runner import run_replications


def run_experiment(
    exp: Experiment,
    out: Path | None = None,
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
    as_json: bool = False,
    quiet: bool = False,
    resume: bool = False,
) -> int:
    from sim.progress import Progress
    from sim.summary_table import print_summary

    folder = ResultsFolder(out if out is not None else default_out_dir(exp))
    try:
        done = folder.prepare(exp, resume)
    except ResumeMismatch as exc:
        sys.stderr.write(f"--resume: {exc}\n")
        return 2
    todo = [r for r in range(exp.replications) if r not in done]
    results: dict[int, ReplicationResult] = {r: done[r] for r in range(exp.replications) if r in done}
    progress = Progress(total=exp.replications, done=len(results), enabled=not quiet and not as_json, label=exp.name)
    try:
        with progress:
            for res in run_replications(exp, todo, workers=workers, executor=executor, address=address):
                folder.checkpoint(res)
                results[res.replication] = res
                progress.advance()
    except KeyboardInterrupt:
        sys.stderr.write(
            f"interrupted: {len(results)} of {exp.replications} replications are saved in {folder.path}; "
            f"finish with: capsim run CONFIG --out {folder.path} --resume\n"
        )
        return 130
    summary = folder.write_final(exp, list(results.values()))
    if exp.output.report:
        from sim.report import write_report

        write_report(folder.path)
    folder.clear_partial()
    if as_json:
        sys.stdout.write(json.dumps(summary, allow_nan=False) + "\n")
    else:
        print_summary(summary, folder.path)
    return 0
