"""Scheduled callbacks for the hot paths: what `simpy.Timeout` puts on SimPy's heap, and nothing more.

A GPU boundary timer or an arrival pump needs no value, no process to resume and no argument checks (its
delay is never negative by construction), yet `simpy.Timeout` pays for them on every event: in a cProfile of
the weekday benchmark `Timeout.__init__` and `schedule` took 2.0 s of 33 s, `call_later` takes 1.6 s of 30 s
(benchmarks/README.md). `call_later` pushes the same heap entry
`(now + delay, NORMAL, next id, event)` that `Environment.schedule` pushes, so events keep SimPy's order
(time, then priority, then creation) and results are identical to scheduling a Timeout. It touches three
of SimPy's attributes (`_now`, `_queue`, `_eid`), unchanged since SimPy 3; pyproject pins simpy below 5 and
tests/test_ticks.py checks the ordering against `simpy.Timeout`, so a SimPy that changes them fails a test,
not a result. Everything that is not a hot path (cold starts, failures, the autoscaler, block loading)
schedules ordinary SimPy events.

`move_earlier` replaces a pending entry by one for an earlier time (a GPU server's boundary timer when an
arrival claims the server): the entry it takes out would only have fired to be ignored, so SimPy pops the
same events in the same order, less that one (tests/test_ticks.py).

`LATE` is a priority one step after SimPy's NORMAL: a callback scheduled with it fires after every ordinary
event at the same time, whenever those were scheduled (a GPU server's iteration boundary sees the requests
that arrive at its very instant, backends/gpu/pool.py).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heapify, heappush
from typing import Any

import simpy
from simpy.events import NORMAL

LATE = NORMAL + 1


class Tick:
    """A bare triggered event: SimPy's step reads `callbacks` and `_ok`, nothing else.

    `data` carries the callback's argument (for example a server and its timer version), so the hot path
    needs no closure per event.
    """

    __slots__ = ("callbacks", "data")
    _ok = True
    _value = None

    def __init__(self, callbacks: list[Callable[[Any], None]], data: Any = None):
        self.callbacks = callbacks
        self.data = data


Entry = tuple[float, int, int, Tick]  # a pending call on SimPy's heap: (time, priority, id, event)


def call_later(
    env: simpy.Environment, delay: float, fn: Callable[[Any], None], data: Any = None, priority: int = NORMAL
) -> Entry:
    """Call `fn(tick)` after `delay` (>= 0) simulated seconds, in SimPy's order; `tick.data` is `data`.
    `priority=LATE`: after the ordinary events at the same time. Returns the heap entry (for `move_earlier`)."""
    queue: Any = env._queue  # SimPy types its heap for its own events; a Tick quacks like one
    entry = (env._now + delay, priority, next(env._eid), Tick([fn], data))
    heappush(queue, entry)
    return entry


def move_earlier(
    env: simpy.Environment, pending: Entry, delay: float, fn: Callable[[Any], None], data: Any, priority: int
) -> Entry | None:
    """`call_later(env, delay, fn, data, priority)` in place of the entry `pending`, which must not fire
    (its call would be ignored) and sorts after the new one; None (nothing changed) if `pending` is no
    longer on the heap. The new entry takes the id a fresh call_later would, so the order is the same."""
    queue: Any = env._queue
    try:
        k = queue.index(pending)  # entries compare by (time, priority, unique id): only itself is equal
    except ValueError:
        return None
    entry = (env._now + delay, priority, next(env._eid), Tick([fn], data))
    queue[k] = entry
    heapify(queue)  # a few dozen entries: one C call, cheaper than a sift in Python
    return entry
