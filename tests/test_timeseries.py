"""Per-minute levels and interval tallies against direct computation from the intervals themselves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.timeseries import IntervalTally, LevelSeries, intersection, merged, total_length, union_length

HORIZON = 600.0  # ten minutes

intervals = st.lists(
    st.tuples(st.floats(0.0, HORIZON), st.floats(0.0, 200.0)).map(lambda p: (p[0], min(p[0] + p[1], HORIZON))),
    max_size=60,
)


def _overlap_per_minute(ivs: list[tuple[float, float]], n: int) -> np.ndarray:
    out = np.zeros(n)
    for a, b in ivs:
        for k in range(n):
            out[k] += max(0.0, min(b, 60.0 * (k + 1)) - max(a, 60.0 * k)) / 60.0
    return out


@given(intervals, st.integers(1, 7), st.floats(0.0, 300.0))
@settings(max_examples=150, deadline=None)
def test_tally_matches_intervals_whatever_the_flush_size(
    ivs: list[tuple[float, float]], flush: int, warmup_s: float
) -> None:
    tally = IntervalTally(warmup_s, HORIZON)
    tally.FLUSH = flush  # fold after every few intervals: folding must not change the sums
    for a, b in ivs:
        tally.add(a, b)
    assert tally.total_length() == pytest.approx(total_length(ivs, warmup_s, HORIZON), abs=1e-9)
    assert tally.minute_means(10) == pytest.approx(_overlap_per_minute(ivs, 10), abs=1e-9)


@given(intervals)
@settings(max_examples=100, deadline=None)
def test_level_series_is_the_time_weighted_mean(ivs: list[tuple[float, float]]) -> None:
    level = LevelSeries(10)
    if ivs:
        a = np.array(ivs)
        level.add(a[:, 0], a[:, 1])
    assert level.minute_means() == pytest.approx(_overlap_per_minute(ivs, 10), abs=1e-9)


def test_tally_memory_does_not_grow_with_the_number_of_intervals() -> None:
    tally = IntervalTally(0.0, 86400.0)
    for k in range(3 * IntervalTally.FLUSH + 5):
        tally.add(float(k), k + 0.5)
    assert len(tally._starts) < IntervalTally.FLUSH and tally.record is None
    assert tally.total_length() == pytest.approx(0.5 * (3 * IntervalTally.FLUSH + 5))


@given(intervals, intervals)
@settings(max_examples=150, deadline=None)
def test_intersection_of_two_unions_by_inclusion_exclusion(
    a: list[tuple[float, float]], b: list[tuple[float, float]]
) -> None:
    """|A and B| = |A| + |B| - |A or B| for the unions A, B of two interval lists; the pieces are disjoint,
    in order, and inside both."""
    both = intersection(a, b)
    expected = union_length(a, 0.0, HORIZON) + union_length(b, 0.0, HORIZON) - union_length(a + b, 0.0, HORIZON)
    assert sum(hi - lo for lo, hi in both) == pytest.approx(expected, abs=1e-9)
    assert all(p[1] < q[0] for p, q in zip(both, both[1:], strict=False))
    for lo, hi in both:
        mid = 0.5 * (lo + hi)
        assert any(x <= mid <= y for x, y in merged(a)) and any(x <= mid <= y for x, y in merged(b))
