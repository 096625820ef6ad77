"""What `capsim plan` and `capsim breakeven` share: the checks before any replication, the progress lines,
and writing the document (`--out` folder, `--json` or a table)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sim.config import Experiment
from sim.config.errors import ConfigError
from sim.engine.executor import Executor

T = TypeVar("T")


@dataclass(frozen=True)
class StudyOutput:
    """Where a study runs and what it writes: the executor, `--json`, `--quiet`, the `--out` folder, and the
    folder relative paths in the config resolve against."""

    executor: Executor
    as_json: bool = False
    quiet: bool = False
    out: Path | None = None
    base_dir: Path | None = None

    def log(self, msg: str) -> None:
        """A progress line on stderr (none with --json or --quiet)."""
        if not (self.quiet or self.as_json):
            err(msg)

    def write(self, exp: Experiment, name: str, doc: dict[str, Any]) -> None:
        """NAME.json and the resolved config.yaml (the report's Experiment section) into --out, if given."""
        if self.out is None:
            return
        from sim.core.atomic import write_text_atomic
        from sim.engine.loading import resolved_yaml

        write_text_atomic(Path(self.out) / name, json.dumps(doc, indent=2, allow_nan=False) + "\n")
        write_text_atomic(Path(self.out) / "config.yaml", resolved_yaml(exp))

    def show(self, doc: dict[str, Any], printer: Callable[[dict[str, Any]], None]) -> None:
        """The document alone on stdout with --json; otherwise the printer's table."""
        if self.as_json:
            sys.stdout.write(json.dumps(doc, allow_nan=False) + "\n")
        else:
            printer(doc)


def err(msg: str) -> None:
    sys.stderr.write(msg.rstrip("\n") + "\n")


def checked(check: Callable[[], T], prefix: str = "") -> T | None:
    """`check()`'s value, or None after printing its problems (a ValueError's message; a ConfigError's problems,
    one line each with its dotted path, after `prefix`): the caller then exits 2."""
    try:
        return check()
    except ValueError as exc:
        err(str(exc))
    except ConfigError as exc:
        for prob in exc.problems:
            err(f"{prefix}{prob.path}: {prob.message}")
    return None
