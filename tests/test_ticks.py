"""sim/ticks.call_later must be indistinguishable from scheduling a simpy.Timeout (same order, same times)."""

from __future__ import annotations

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.ticks import LATE, Tick, call_later

# (delay of a first-level event, delays of the events it schedules when it fires, Tick or Timeout)
schedules = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.25]),
        st.lists(st.sampled_from([0.0, 0.25, 1.0]), max_size=3),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
)


def _run(plan: list[tuple[float, list[float], bool]], use_ticks: bool) -> list[tuple[float, str]]:
    env = simpy.Environment()
    fired: list[tuple[float, str]] = []

    def schedule(delay: float, name: str, tick: bool, then: list[float]) -> None:
        def fire(_ev: object) -> None:
            fired.append((env.now, name))
            for k, d in enumerate(then):
                schedule(d, f"{name}.{k}", tick, [])

        if tick and use_ticks:
            call_later(env, delay, fire)
        else:
            simpy.Timeout(env, delay).callbacks.append(fire)

    for n, (delay, then, tick) in enumerate(plan):
        schedule(delay, str(n), tick, then)
    env.run(until=2.0)  # a stop in the middle: pending events on both sides of it
    env.run()
    return fired


@given(schedules)
@settings(max_examples=200, deadline=None)
def test_ticks_fire_in_simpy_timeout_order(plan: list[tuple[float, list[float], bool]]) -> None:
    assert _run(plan, use_ticks=True) == _run(plan, use_ticks=False)


def test_tick_carries_its_data() -> None:
    env = simpy.Environment()
    seen: list[tuple[float, object]] = []

    def fire(tick: Tick) -> None:
        seen.append((env.now, tick.data))

    call_later(env, 3.0, fire, ("server", 7))
    env.run()
    assert seen == [(3.0, ("server", 7))]


def test_late_ticks_fire_after_every_ordinary_event_of_their_time() -> None:
    """A LATE tick scheduled first still fires after ordinary events of the same time, also those they
    schedule at zero delay; at an earlier time it fires first, as any event."""
    env = simpy.Environment()
    fired: list[str] = []
    call_later(env, 1.0, lambda _t: fired.append("late"), priority=LATE)
    call_later(env, 0.5, lambda _t: fired.append("early-late"), priority=LATE)

    def ordinary(_e: object) -> None:
        fired.append("ordinary")
        call_later(env, 0.0, lambda _t: fired.append("chained"))

    simpy.Timeout(env, 1.0).callbacks.append(ordinary)
    call_later(env, 1.0, lambda _t: fired.append("tick"))
    env.run()
    assert fired == ["early-late", "ordinary", "tick", "chained", "late"]
