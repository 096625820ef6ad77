"""sim/ticks.call_later must be indistinguishable from scheduling a simpy.Timeout (same order, same times)."""

from __future__ import annotations

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.ticks import LATE, Tick, call_later, move_earlier

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


# (delay of each call, and for some the earlier delay it is moved to before anything fires)
moves = st.lists(
    st.tuples(st.sampled_from([0.5, 1.0, 1.5, 2.25, 3.0]), st.none() | st.sampled_from([0.0, 0.25, 0.5, 1.0])),
    min_size=1,
    max_size=20,
)


@given(moves)
@settings(max_examples=200, deadline=None)
def test_move_earlier_is_a_new_call_less_the_ignored_one(plan: list[tuple[float, float | None]]) -> None:
    """Moving a pending call earlier fires what scheduling a new call and ignoring the old one fires, in
    the same order, with one event fewer for each call moved."""

    def run(move: bool) -> tuple[list[tuple[float, int]], int]:
        env = simpy.Environment()
        fired: list[tuple[float, int]] = []
        live: dict[int, int] = {}  # call -> version that counts
        steps = [0]

        def fire(tick: Tick) -> None:
            steps[0] += 1
            n, version = tick.data
            if live[n] == version:
                fired.append((env.now, n))

        for n, (delay, _) in enumerate(plan):
            live[n] = 0
            entry = call_later(env, delay, fire, (n, 0), LATE)
            earlier = plan[n][1]
            if earlier is not None and earlier < delay:
                live[n] = 1
                moved = move_earlier(env, entry, earlier, fire, (n, 1), LATE) if move else None
                if moved is None:
                    call_later(env, earlier, fire, (n, 1), LATE)
        env.run()
        return fired, steps[0]

    (fired_new, steps_new), (fired_moved, steps_moved) = run(False), run(True)
    assert fired_moved == fired_new
    assert steps_new - steps_moved == sum(1 for d, e in plan if e is not None and e < d)


def test_move_earlier_of_a_fired_call_changes_nothing() -> None:
    env = simpy.Environment()
    entry = call_later(env, 1.0, lambda tick: None)
    env.run()
    assert move_earlier(env, entry, 0.5, lambda tick: None, None, LATE) is None
    assert env.peek() == float("inf")
