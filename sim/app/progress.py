"""A rich progress bar on stderr, silent when asked or when stderr is not a terminal.

The bar counts replications, fractions included: it moves within a replication as its simulated hours
are done (sim.engine.live), so the time remaining is estimated from the work actually done so far.
"""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class Progress:
    def __init__(self, total: int, done: int = 0, enabled: bool = True, label: str = "replications"):
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        self.total, self.done, self.label = total, done, label

    def __enter__(self) -> Progress:
        if self.enabled:
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:.1f}/{task.total:g} replications"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done)
        return self

    def advance(self) -> None:
        self.done += 1
        self.partial(0.0)

    def partial(self, running: float) -> None:
        """The work done in replications still running, in replications (e.g. 1.5)."""
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=min(self.total, self.done + running))

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(et, ev, tb)
