"""Options the commands share: --set/--seed/--reps as overrides, the executor (checked), the --out guard, the sweep
grid, and the exit codes."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sim.config import Experiment
    from sim.engine.executor import Executor

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INFEASIBLE = 0, 1, 2, 3


def err(msg: str) -> None:
    sys.stderr.write(msg.rstrip("\n") + "\n")


def overrides_from(set_: list[str] | None, seed: int | None, reps: int | None = None) -> list[str]:
    """`--set` overrides plus the ones that `--reps` and `--seed` stand for."""
    overrides = list(set_ or [])
    if reps is not None:
        overrides.append(f"replications={reps}")
    if seed is not None:
        overrides.append(f"seed={seed}")
    return overrides


def executor_from(kind: str, workers: int | None, address: str | None) -> Executor:
    """The `--executor`, `--workers` and `--address` options as one Executor (exit 2 when bad or unreachable)."""
    from sim.engine.executor import KINDS, Executor

    if kind not in KINDS:
        err(f"--executor: must be local or dask, got {kind!r}")
        raise typer.Exit(EXIT_USAGE)
    if kind == "dask" and address:
        from sim.engine.dask_cluster import check_address

        try:
            check_address(address)
        except ValueError as exc:
            err(f"--address {address}: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
    return Executor(kind, workers, address)


@contextlib.contextmanager
def out_guard(out: Path | None) -> Iterator[None]:
    """For a command that writes into --out at its end: refuse a folder it could not write before running
    anything, and hold the folder's lock while it runs."""
    if out is None:
        yield
        return
    from sim.engine.folder_lock import FolderLocked, lock_folder
    from sim.engine.results import ResumeMismatch, check_out_dir

    with contextlib.ExitStack() as stack:
        try:
            check_out_dir(out)
            stack.enter_context(lock_folder(out))
        except (ResumeMismatch, FolderLocked) as exc:
            err(f"--out: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
        yield


def base_dir_of(config: str) -> Path:
    return Path.cwd() if config == "-" else Path(config).resolve().parent


def with_sweep(exp: Experiment, specs: list[str], base_dir: Path) -> Experiment:
    """The config's `sweep:` grid updated with the `--sweep KEY=V1,V2` options, every point checked (the
    config's own grid was checked when it was loaded)."""
    from sim.engine.variants import parse_assignment_list, sweep_and_limit_problems

    if not specs:
        return exp
    grid = dict(exp.sweep)
    for spec in specs:
        try:
            key, values = parse_assignment_list(spec)
        except ValueError as exc:
            err(f"--sweep: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
        grid[key] = values
    swept = exp.model_copy(update={"sweep": grid})
    problems = sweep_and_limit_problems(swept, base_dir)
    if problems:
        for path, message in problems:
            value = re.match(r"value (.*?): (.*)$", message) if path.startswith("sweep.") else None
            if value:  # one swept value refused: named as the option that gave it
                err(f"--sweep {path.removeprefix('sweep.')}={value[1].strip(chr(39))}: {value[2]}")
            else:
                err(f"--sweep: {path}: {message}")
        raise typer.Exit(EXIT_USAGE)
    return swept


def click_exception_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """Usage-error and abort classes: typer >= 0.22 vendors click as typer._click, older typer uses click."""
    usage: list[type] = []
    abort: list[type] = [typer.Abort]
    try:
        from typer._click.exceptions import ClickException as VendoredClickException

        usage.append(VendoredClickException)
    except ImportError:
        pass
    try:
        import click

        usage.append(click.exceptions.ClickException)
        abort.append(click.exceptions.Abort)
    except ImportError:
        pass
    return tuple(usage), tuple(abort)
