"""The `capsim` command line (typer). Exit codes: 0 ok, 1 internal error, 2 bad config or arguments."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import typer

from sim.config import ConfigError, Experiment, load_config

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="capsim: Monte Carlo capacity simulation for LLM serving (APIs, caches, GPU pools).",
)

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INFEASIBLE = 0, 1, 2, 3


def _err(msg: str) -> None:
    sys.stderr.write(msg.rstrip("\n") + "\n")


def _load(config: str, overrides: list[str] | None) -> Experiment:
    try:
        return load_config(config, overrides or [])
    except ConfigError as exc:
        for p in exc.problems:
            _err(str(p))
        raise typer.Exit(EXIT_USAGE) from None


@app.command()
def validate(
    config: str = typer.Argument(..., help="experiment YAML, or - for stdin"),
    set_: list[str] = typer.Option(None, "--set", help="override: dotted.key=value"),
) -> None:
    """Check a config and print every problem with its dotted path and line."""
    exp = _load(config, set_)
    typer.echo(f"ok: {exp.name} ({exp.replications} replications x {exp.horizon_h} h, seed {exp.seed})")


@app.command()
def run(
    config: str = typer.Argument(..., help="experiment YAML, or - for stdin"),
    reps: int | None = typer.Option(None, "--reps", min=1, help="replications (default: the config's)"),
    seed: int | None = typer.Option(None, "--seed", min=0, help="root seed (default: the config's)"),
    out: Path | None = typer.Option(None, "--out", help="results folder (default results/<name>/<UTC time>)"),
    set_: list[str] = typer.Option(None, "--set", help="override: dotted.key=value (repeatable)"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="local processes (default: cores)"),
    executor: str = typer.Option("local", "--executor", help="local | dask"),
    address: str | None = typer.Option(None, "--address", help="Dask scheduler address"),
    as_json: bool = typer.Option(False, "--json", help="print the summary JSON alone on stdout"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    resume: bool = typer.Option(False, "--resume", help="keep finished replications in --out, run the rest"),
) -> None:
    """Run the Monte Carlo experiment and write the results folder."""
    overrides = list(set_ or [])
    if reps is not None:
        overrides.append(f"replications={reps}")
    if seed is not None:
        overrides.append(f"seed={seed}")
    if executor not in ("local", "dask"):
        _err(f"--executor: must be local or dask, got {executor!r}")
        raise typer.Exit(EXIT_USAGE)
    if resume and out is None:
        _err("--resume needs --out (the folder of the run to resume)")
        raise typer.Exit(EXIT_USAGE)
    exp = _load(config, overrides)
    from sim.experiment_run import run_experiment

    code = run_experiment(
        exp, out=out, workers=workers, executor=executor, address=address, as_json=as_json, quiet=quiet, resume=resume
    )
    raise typer.Exit(code)


def main() -> None:
    """Console entry point: user mistakes exit 2 with a message, never a traceback."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL) if hasattr(signal, "SIGPIPE") else None
    try:
        # with standalone_mode=False click returns the exit code of typer.Exit instead of exiting
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else EXIT_OK)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: say what broke, briefly
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(EXIT_USAGE)
        if isinstance(exc, click.exceptions.Abort):
            _err("aborted")
            sys.exit(130)
        if os.environ.get("CAPSIM_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} (set CAPSIM_DEBUG=1 for the traceback)")
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
