"""The `capsim` command line (typer). Exit codes: 0 ok, 1 internal error, 2 bad config or arguments."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

from sim.app import calibrate_command
from sim.app.options import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    base_dir_of,
    click_exception_types,
    err,
    executor_from,
    out_guard,
    overrides_from,
    with_sweep,
)

if TYPE_CHECKING:
    from sim.app.study_output import StudyOutput
    from sim.config import Experiment
    from sim.engine.executor import Executor


class _FlagsAsFlags:
    """Help lists an on/off option as the bare flag (`--json`), not as `--json <bool>`."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params

    def get_help_option(self, ctx: Any) -> Any:
        # typer's --help has no default, so when absent its value is None, not a bool, and typer then builds a
        # pydantic TypeAdapter to coerce it: ~0.2 s of pydantic import for every command, `--help` included.
        # False is what an absent flag means; a bool skips the coercion (same help text, same behaviour).
        opt = super().get_help_option(ctx)  # type: ignore[misc]
        if opt is not None and opt.default is None:
            opt.default = False
        return opt


class Command(_FlagsAsFlags, TyperCommand):
    pass


class Group(_FlagsAsFlags, TyperGroup):
    pass


app = typer.Typer(
    cls=Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="capsim: Monte Carlo capacity simulation for LLM serving (APIs, caches, GPU pools).",
)


def _print_version(value: bool) -> None:
    if value:
        from sim.core.version import __version__

        typer.echo(f"capsim {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="print the version and exit"
    ),
) -> None:
    """capsim: Monte Carlo capacity simulation for LLM serving (APIs, caches, GPU pools)."""


def _load(config: str, overrides: list[str] | None) -> Experiment:
    # imported here, not at the top: `capsim CMD --help` builds no config model and loads no simulator
    from sim.config.errors import ConfigError
    from sim.engine.loading import load_config

    try:
        return load_config(config, overrides or [])
    except ConfigError as exc:
        for p in exc.problems:
            err(str(p))
        raise typer.Exit(EXIT_USAGE) from None


@app.command(cls=Command)
def validate(
    config: str = typer.Argument(..., metavar="CONFIG", help="experiment YAML, or - for stdin"),
    set_: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE", help="override: dotted.key=value"),
) -> None:
    """Check a config and print every problem with its dotted path and line."""
    exp = _load(config, set_)
    typer.echo(f"ok: {exp.name} ({exp.replications} replications x {exp.horizon_h} h, seed {exp.seed})")


@app.command(cls=Command)
def run(
    config: str = typer.Argument(..., metavar="CONFIG", help="experiment YAML, or - for stdin"),
    reps: int | None = typer.Option(None, "--reps", min=1, metavar="N", help="replications (default: the config's)"),
    seed: int | None = typer.Option(None, "--seed", min=0, metavar="SEED", help="root seed (default: the config's)"),
    out: Path | None = typer.Option(
        None, "--out", metavar="DIR", help="results folder (default results/<name>/<UTC time>)"
    ),
    set_: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE", help="override: dotted.key=value (repeatable)"),
    workers: int | None = typer.Option(None, "--workers", min=1, metavar="N", help="local processes (default: cores)"),
    executor: str = typer.Option("local", "--executor", metavar="local|dask", help="local | dask"),
    address: str | None = typer.Option(None, "--address", metavar="ADDR", help="Dask scheduler address"),
    as_json: bool = typer.Option(False, "--json", help="print the summary JSON alone on stdout"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    resume: bool = typer.Option(False, "--resume", help="keep finished replications in --out, run the rest"),
    sweep: list[str] = typer.Option(
        None, "--sweep", metavar="KEY=V1,V2,...", help="KEY=V1,V2,...: run every value (repeatable: a grid)"
    ),
) -> None:
    """Run the Monte Carlo experiment and write the results folder."""
    overrides = overrides_from(set_, seed, reps)
    runner = executor_from(executor, workers, address)
    if resume and out is None:
        err("--resume needs --out (the folder of the run to resume)")
        raise typer.Exit(EXIT_USAGE)
    exp = _load(config, overrides)
    if sweep or exp.sweep:
        from sim.app.sweep_command import run_sweep

        exp = with_sweep(exp, sweep or [], base_dir_of(config))
        code = run_sweep(
            exp,
            out=out,
            executor=runner,
            as_json=as_json,
            quiet=quiet,
            resume=resume,
            base_dir=base_dir_of(config),
        )
        raise typer.Exit(code)
    from sim.app.run_command import run_experiment

    code = run_experiment(exp, out=out, executor=runner, as_json=as_json, quiet=quiet, resume=resume)
    raise typer.Exit(code)


@app.command(cls=Command)
def report(
    results_dir: Path = typer.Argument(
        ..., metavar="RESULTS_DIR", help="a results folder written by capsim run, plan or breakeven"
    ),
) -> None:
    """(Re)build report.html and plots/*.png of a results folder (run, sweep, plan or breakeven)."""
    from sim.engine.folder_lock import FolderLocked, lock_folder
    from sim.report import is_results_folder, write_report
    from sim.report.data import folder_problem
    from sim.report.sweep_page import is_sweep_folder, write_sweep_report

    if is_sweep_folder(results_dir) and not results_dir.is_symlink():
        try:
            with lock_folder(results_dir):
                typer.echo(str(write_sweep_report(results_dir)))
        except (FolderLocked, OSError, ValueError, KeyError) as exc:
            err(f"{results_dir}: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
        return
    if not is_results_folder(results_dir):
        err(
            f"{results_dir}: not a capsim results folder "
            "(expected summary.json, sweep.json, plan.json or breakeven.json)"
        )
        raise typer.Exit(EXIT_USAGE)
    problem = folder_problem(results_dir)
    if problem:
        err(f"{results_dir}: {problem}")
        raise typer.Exit(EXIT_USAGE)
    try:
        with lock_folder(results_dir):
            path = write_report(results_dir)
    except (FolderLocked, OSError) as exc:
        err(f"{results_dir}: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(str(path))


@app.command(cls=Command)
def plan(
    config: str = typer.Argument(..., metavar="CONFIG", help="experiment YAML, or - for stdin"),
    vary: list[str] = typer.Option(
        ...,
        "--vary",
        metavar="KEY=LO..HI|KEY=V1,V2,...",
        help="a dimension (repeatable): KEY=LO..HI searched (e.g. backends.gpu_pool.servers=1..32), "
        "KEY=V1,V2,... enumerated (e.g. backends.gpu_pool.gpu=h100,h200)",
    ),
    target: list[str] = typer.Option(
        None, "--target", metavar="METRIC<=VALUE", help="METRIC<=VALUE or METRIC>=VALUE (default: plan.targets)"
    ),
    confidence: float | None = typer.Option(
        None, "--confidence", metavar="P", help="required P(meet) (default: plan.confidence)"
    ),
    reps: int = typer.Option(10, "--reps", min=1, metavar="N", help="replications per candidate to start with"),
    max_reps: int = typer.Option(80, "--max-reps", min=1, metavar="N", help="cap on replications per candidate"),
    tol: float | None = typer.Option(None, "--tol", metavar="WIDTH", help="real keys: stop bisecting at this width"),
    seed: int | None = typer.Option(None, "--seed", min=0, metavar="SEED", help="root seed (default: the config's)"),
    set_: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE", help="override: dotted.key=value (repeatable)"),
    workers: int | None = typer.Option(None, "--workers", min=1, metavar="N", help="local processes (default: cores)"),
    executor: str = typer.Option("local", "--executor", metavar="local|dask", help="local | dask"),
    address: str | None = typer.Option(None, "--address", metavar="ADDR", help="Dask scheduler address"),
    as_json: bool = typer.Option(False, "--json", help="print the plan JSON alone on stdout"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress lines"),
    out: Path | None = typer.Option(
        None, "--out", metavar="DIR", help="also write plan.json (and frontier.png) into this folder"
    ),
    screens: bool = typer.Option(
        True, "--screens/--no-screens", help="rule out hopeless points analytically before simulating"
    ),
    cost_screen: bool = typer.Option(
        False, "--cost-screen", help="skip points whose fixed GPU pools cost more than the cheapest found to meet"
    ),
) -> None:
    """Cheapest point of the --vary space whose replications meet every target with probability >= P
    (one KEY=LO..HI: its smallest value); exit 3: none."""
    from sim.app.plan_command import run_plan_command

    io = _study_output(config, executor_from(executor, workers, address), as_json, quiet, out)
    exp = _load(config, overrides_from(set_, seed))
    with out_guard(out):
        code = run_plan_command(exp, vary, target or None, confidence, reps, max_reps, tol, io, screens, cost_screen)
    raise typer.Exit(code)


@app.command(cls=Command)
def breakeven(
    config: str = typer.Argument(..., metavar="CONFIG", help="experiment YAML, or - for stdin"),
    volumes: str = typer.Option(..., "--volumes", metavar="V1,V2,...", help="monthly token volumes, e.g. 100M,500M,2B"),
    reps: int = typer.Option(10, "--reps", min=1, metavar="N", help="replications per candidate to start with"),
    max_reps: int = typer.Option(80, "--max-reps", min=1, metavar="N", help="cap on replications per candidate"),
    max_servers: int = typer.Option(
        256, "--max-servers", min=1, metavar="N", help="largest GPU server count considered"
    ),
    seed: int | None = typer.Option(None, "--seed", min=0, metavar="SEED", help="root seed (default: the config's)"),
    set_: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE", help="override: dotted.key=value (repeatable)"),
    workers: int | None = typer.Option(None, "--workers", min=1, metavar="N", help="local processes (default: cores)"),
    executor: str = typer.Option("local", "--executor", metavar="local|dask", help="local | dask"),
    address: str | None = typer.Option(None, "--address", metavar="ADDR", help="Dask scheduler address"),
    as_json: bool = typer.Option(False, "--json", help="print the breakeven JSON alone on stdout"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress lines"),
    out: Path | None = typer.Option(
        None, "--out", metavar="DIR", help="write breakeven.json and breakeven.png into this folder"
    ),
    vary: list[str] = typer.Option(
        None,
        "--vary",
        metavar="KEY=V1,V2,...",
        help="self-host on the cheapest of these (repeatable), e.g. backends.gpu_pool.gpu=h100,h200",
    ),
    pool: str | None = typer.Option(None, "--pool", metavar="NAME", help="named pools: the pool to size"),
) -> None:
    """API-only vs self-hosted (servers sized by the plan search) vs hybrid, monthly cost across volumes."""
    from sim.app.breakeven_command import run_breakeven_command

    io = _study_output(config, executor_from(executor, workers, address), as_json, quiet, out)
    exp = _load(config, overrides_from(set_, seed))
    with out_guard(out):
        code = run_breakeven_command(exp, volumes, reps, max_reps, max_servers, io, vary or (), pool)
    raise typer.Exit(code)


def _study_output(config: str, executor: Executor, as_json: bool, quiet: bool, out: Path | None) -> StudyOutput:
    from sim.app.study_output import StudyOutput

    return StudyOutput(executor, as_json=as_json, quiet=quiet, out=out, base_dir=base_dir_of(config))


@app.command(cls=Command)
def compare(
    dir_a: Path = typer.Argument(..., metavar="A", help="results folder A (the baseline)"),
    dir_b: Path = typer.Argument(..., metavar="B", help="results folder B (differences are B - A)"),
    as_json: bool = typer.Option(False, "--json", help="print the comparison as JSON on stdout"),
    as_html: bool = typer.Option(False, "--html", help="also write a side-by-side report (see --html-out)"),
    html_out: Path = typer.Option(
        Path("compare.html"), "--html-out", metavar="FILE", help="where --html writes the page"
    ),
) -> None:
    """Two runs' metrics side by side, with paired differences B - A when they share the seed."""
    import json

    from sim.report.compare import NotComparable, print_compare
    from sim.report.compare import compare as compare_runs

    try:
        result = compare_runs(dir_a, dir_b)
    except NotComparable as exc:
        err(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        sys.stdout.write(json.dumps(result, allow_nan=False) + "\n")
    else:
        print_compare(result)
    if as_html:
        from sim.report.compare_page import write_compare_report

        path = write_compare_report(result, html_out)
        err(f"written: {path}")


@app.command(cls=Command)
def paired(
    config: str = typer.Argument(..., metavar="CONFIG", help="experiment YAML, or - for stdin"),
    vary: str = typer.Option(..., "--vary", metavar="KEY=A,B", help="the two variants A and B (B - A is reported)"),
    reps: int = typer.Option(20, "--reps", min=2, help="replications per variant"),
    metric: list[str] = typer.Option(
        None, "--metric", metavar="METRIC", help="metrics to compare (repeatable; default: a headline)"
    ),
    independent: bool = typer.Option(
        False, "--independent", help="also run B on independent seeds and report the variance reduction"
    ),
    seed: int | None = typer.Option(None, "--seed", min=0, metavar="SEED", help="root seed (default: the config's)"),
    set_: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE", help="override: dotted.key=value (repeatable)"),
    workers: int | None = typer.Option(None, "--workers", min=1, metavar="N", help="local processes (default: cores)"),
    executor: str = typer.Option("local", "--executor", metavar="local|dask", help="local | dask"),
    address: str | None = typer.Option(None, "--address", metavar="ADDR", help="Dask scheduler address"),
    as_json: bool = typer.Option(False, "--json", help="print the comparison JSON alone on stdout"),
) -> None:
    """Paired difference B - A of two variants on common random numbers, with 95% intervals (as in compare)."""
    from sim.app.paired_command import run_compare_command

    runner = executor_from(executor, workers, address)
    exp = _load(config, overrides_from(set_, seed))
    code = run_compare_command(exp, vary, reps, metric or None, independent, runner, as_json, base_dir_of(config))
    raise typer.Exit(code)


@app.command()
def fit(
    log: Path = typer.Argument(..., help="request log: one row per request (CSV, JSON lines or Parquet)"),
    out: Path = typer.Option(..., "--out", help="the experiment YAML to write (fit-report.html goes beside it)"),
    fmt: str | None = typer.Option(None, "--format", help="csv | jsonl | parquet (default: from the file name)"),
    time_column: str | None = typer.Option(None, "--time-column", help="request time (ISO date-time or epoch)"),
    input_column: str | None = typer.Option(None, "--input-column", help="input (prompt) tokens"),
    output_column: str | None = typer.Option(None, "--output-column", help="output (completion) tokens"),
    class_column: str | None = typer.Option(None, "--class-column", help="request class (optional)"),
    user_column: str | None = typer.Option(None, "--user-column", help="user or session id (optional)"),
    prompt_hash_column: str | None = typer.Option(None, "--prompt-hash-column", help="prompt hash (optional)"),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA zone or +HH:MM: local time of the profile"),
    session_gap_s: float = typer.Option(1800.0, "--session-gap-s", min=1.0, help="a longer gap starts a session"),
    report: bool = typer.Option(True, "--report/--no-report", help="write fit-report.html beside the config"),
) -> None:
    """Fit a workload to a request log and write an experiment config that reproduces it."""
    from workloads.fit import fit_log
    from workloads.fit.writer import write_experiment
    from workloads.log_cells import LogError

    columns = {
        "time": time_column,
        "input": input_column,
        "output": output_column,
        "class": class_column,
        "user": user_column,
        "prompt_hash": prompt_hash_column,
    }
    try:
        result = fit_log(log, fmt, columns, timezone, session_gap_s)
    except LogError as exc:
        err(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    for line in result.log.problems.summary(result.log.unit):
        err(f"{log}: {line}")
    for note in result.notes:
        err(f"{log}: note: {note}")
    written = write_experiment(result, out)
    exp = _load(str(out), None)  # what was written must load: a failure here is capsim's bug
    if report:
        from sim.app.fit_report import write_fit_report

        written.append(write_fit_report(result, exp, out.parent / "fit-report.html"))
    typer.echo(
        f"fitted {result.log.size} requests ({sum(result.log.problems.counts.values())} problems counted): "
        f"{result.rates.mean_rps:.4g} req/s mean, {len(result.classes)} class(es), {len(result.rates.bursts)} burst(s)"
    )
    for path in written:
        typer.echo(str(path))


app.command(cls=Command)(calibrate_command.calibrate)


def main() -> None:
    """Console entry point: user mistakes exit 2 with a message, never a traceback."""
    # SIGPIPE stays ignored (Python's default): the process pool relies on it, since a worker stopped by
    # Ctrl-C leaves its task pipe closed and the pool's feeder thread then writes to it and expects EPIPE as
    # an error it silences (with SIGPIPE's default action that write killed the whole run, exit -13, before
    # it could save and report). A reader that goes away (`capsim run --json | head`) is handled below.
    try:
        # without standalone mode, typer returns the code of a `typer.Exit` instead of raising it
        code = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        _stdout_gone()
        sys.exit(EXIT_SIGPIPE)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: say what broke, briefly
        usage, abort = click_exception_types()
        if isinstance(exc, usage):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(EXIT_USAGE)
        if isinstance(exc, abort):
            err("aborted")
            sys.exit(130)
        if os.environ.get("CAPSIM_DEBUG"):
            raise
        err(f"internal error: {type(exc).__name__}: {exc} (set CAPSIM_DEBUG=1 for the traceback)")
        sys.exit(EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


EXIT_SIGPIPE = 128 + 13  # what a shell reports for a writer whose reader went away


def _stdout_gone() -> None:
    """The reader of stdout went away: point stdout at /dev/null so that Python's exit flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    main()
