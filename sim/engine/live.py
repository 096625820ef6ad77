"""Progress within a replication: how much of its simulated horizon is done, told to whoever shows it.

A replication reports the fraction of its horizon simulated so far (`report`, a few dozen times per
replication: once per simulated hour, at most 100 times). In a worker process the fraction goes into a
shared array of doubles indexed by replication (set up by the pool's initializer, `use_array`); in the
parent process a callback takes it directly (`reporting_to`). Nothing else reads it: results never depend
on whether, or how often, progress was reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableSequence
from contextlib import contextmanager

_callback: Callable[[int, float], None] | None = None


def report(replication: int, fraction: float) -> None:
    if _callback is not None:
        _callback(replication, fraction)


def use_array(slots: MutableSequence[float] | None) -> None:
    """In a worker process: write each replication's fraction into slot `replication % len(slots)`."""
    global _callback
    if slots is None or len(slots) == 0:
        _callback = None
        return

    def write(replication: int, fraction: float) -> None:
        slots[replication % len(slots)] = fraction

    _callback = write


@contextmanager
def reporting_to(callback: Callable[[int, float], None] | None) -> Iterator[None]:
    """In this process, for the duration of the block: send every report to `callback`."""
    global _callback
    previous = _callback
    _callback = callback
    try:
        yield
    finally:
        _callback = previous


def num_steps(horizon_h: float) -> int:
    """How many times a replication reports: once per simulated hour, between 1 and 100 times."""
    import math

    return max(1, min(100, math.ceil(horizon_h)))
