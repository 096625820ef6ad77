"""`capsim run`: fan out the replications, checkpoint each, write the folder, print the summary.

Interruptions: Ctrl-C (SIGINT) or SIGTERM stops the workers at once, keeps every finished replication in
`<out>/.partial/` and prints the command that finishes the run; `kill -9` loses only the replications
that were running. `--resume` runs what is missing and assembles the folder from the checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from sim.config import Experiment
from sim.core.atomic import UnsafePath
from sim.core.calendar import HOUR_S
from sim.engine.checkpoints import CheckpointRefused
from sim.engine.executor import Executor, release_memory
from sim.engine.folder_lock import FolderLocked, lock_folder
from sim.engine.results import AlreadyComplete, ResultsFolder, ResumeMismatch, check_out_dir, default_out_dir

if TYPE_CHECKING:
    from sim.app.progress import Progress


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resume_command(out: Path) -> str:
    return f"capsim run CONFIG --out {shlex.quote(str(out))} --resume   (CONFIG: your config, or {out}/config.yaml)"


def warn_short_horizon(exp: Experiment) -> None:
    """One line when the measured window holds no whole peak hour: the peak_* metrics are then undefined."""
    from sim.engine.recorder import peak_hour_covered

    hour = int(exp.workload.arrivals.peak_hour)
    if not peak_hour_covered(hour, exp.warmup_h * HOUR_S, exp.horizon_h * HOUR_S):
        sys.stderr.write(
            f"warning: the measured window ({exp.warmup_h:g} h to {exp.horizon_h:g} h) holds no whole peak hour "
            f"({hour:02d}:00-{hour + 1:02d}:00): peak_* metrics are undefined (null, n/a)\n"
        )


def note_gpu_model(exp: Experiment) -> None:
    """One line when the pool's iteration times are derived for a GPU family without measured factors."""
    from backends.gpu.catalog import efficiency_note, gpu_of
    from backends.routing.router import Router

    spec = exp.backends.gpu_pool
    if spec.iteration_s is None and spec.profile is None and Router.uses_gpu(exp):
        note = efficiency_note(gpu_of(spec).family)
        if note is not None:
            sys.stderr.write(f"note: {note}\n")


def execute(
    exp: Experiment,
    folder: ResultsFolder,
    done: Mapping[int, object] | None = None,
    resume: bool = False,
    executor: Executor | None = None,
    progress: bool | Progress = False,
    report: bool = True,
    point: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the replications not in `done` (prepare the folder first when `done` is None), checkpoint
    each, write the final files (and the report), clear the checkpoints; returns summary.json's content.
    The one path from a config to a results folder: `capsim run`, each point of a sweep (`point`: its
    values, a `progress` bar shared by the points) and `sim.simulate` take it."""
    from sim.app.progress import Progress

    if done is None:
        done = folder.prepare(exp, resume)
    todo = [r for r in range(exp.replications) if r not in done]
    shown: contextlib.AbstractContextManager[object]
    if isinstance(progress, Progress):  # a sweep's bar, open across its points
        bar, shown = progress, contextlib.nullcontext()
        for _ in done:
            bar.advance()
    else:
        bar = Progress(total=exp.replications, done=len(done), enabled=progress, label=exp.name)
        shown = bar
    with shown:
        for res in (executor or Executor()).run(exp, todo, on_partial=bar.partial):
            release_memory()  # an in-process replication's state is garbage now: free it before writing
            folder.checkpoint(res)
            bar.advance()
    summary = folder.finalize(exp, point=point)
    if report:
        from sim.report import write_report

        release_memory()  # the tables' writing freed what it used: the report starts from there

        write_report(folder.path)
    folder.clear_partial()
    return summary


def run_experiment(
    exp: Experiment,
    out: Path | None = None,
    executor: Executor | None = None,
    as_json: bool = False,
    quiet: bool = False,
    resume: bool = False,
) -> int:
    folder = ResultsFolder(out if out is not None else default_out_dir(exp))
    return in_locked_folder(
        folder.path, lambda: _run_locked(exp, folder, executor or Executor(), as_json, quiet, resume)
    )


def in_locked_folder(path: Path, body: Callable[[], int]) -> int:
    """Run `body` with `path` checked as an --out folder and locked for the whole run (run and sweep); a folder
    that is not this run's or is locked by another run is exit 2, named as --out."""
    try:
        check_out_dir(path)
        with lock_folder(path):
            return body()
    except (ResumeMismatch, FolderLocked) as exc:
        sys.stderr.write(f"--out: {exc}\n")
        return 2


def _run_locked(
    exp: Experiment,
    folder: ResultsFolder,
    executor: Executor,
    as_json: bool,
    quiet: bool,
    resume: bool,
) -> int:
    from sim.app.summary_table import print_summary

    try:
        done = folder.prepare(exp, resume)
    except AlreadyComplete as exc:
        sys.stderr.write(f"--resume: {exc}; nothing to do\n")
        if as_json:
            sys.stdout.write((folder.path / "summary.json").read_text(encoding="utf-8").strip() + "\n")
        return 0
    except ResumeMismatch as exc:
        sys.stderr.write(f"{'--resume' if resume else '--out'}: {exc}\n")
        return 2
    if not quiet:
        warn_short_horizon(exp)
        note_gpu_model(exp)
    finished = len(done)
    if resume and finished and not quiet and not as_json:
        sys.stderr.write(f"resuming: {finished} of {exp.replications} replications already done\n")
    try:
        with sigterm_as_interrupt():
            summary = execute(
                exp,
                folder,
                done=done,
                executor=executor,
                progress=not quiet and not as_json,
                report=exp.output.report,
            )
    except (CheckpointRefused, UnsafePath) as exc:
        sys.stderr.write(f"--out: {exc}; the results were not written\n")
        return 2
    except KeyboardInterrupt as exc:
        saved = len(folder.store.keys("rep-"))
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        if saved >= exp.replications:
            sys.stderr.write(f"{what} while writing the results of {folder.path}; every replication is saved\n")
        else:
            sys.stderr.write(f"{what}: {saved} of {exp.replications} replications are saved in {folder.path}\n")
        sys.stderr.write(f"finish the run with: {resume_command(folder.path)}\n")
        return 143 if isinstance(exc, Terminated) else 130
    if as_json:
        sys.stdout.write(json.dumps(summary, allow_nan=False) + "\n")
    else:
        print_summary(summary, folder.path)
    return 0
