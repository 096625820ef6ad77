"""Per-minute series built from intervals and point events, accumulated block by block.

`LevelSeries` holds the time-weighted average of a level (requests in flight, queue length, busy servers)
over every simulated minute: the integral of a sum of indicator intervals [start, end) is
I(b) = sum_i (b - start_i)^+ - (b - end_i)^+ at each minute boundary b, which needs only counts and sums of
the starts and ends below each boundary. Adding intervals is therefore additive and order-free.
"""

from __future__ import annotations

import numpy as np


def minutes_in(horizon_s: float) -> int:
    """Number of per-minute bins covering [0, horizon_s] (at least one)."""
    return max(1, int(np.ceil(horizon_s / 60.0)))


class LevelSeries:
    def __init__(self, num_minutes: int):
        self.num_minutes = num_minutes
        size = num_minutes + 2
        self._cnt = np.zeros(size)
        self._sum = np.zeros(size)

    def _bin(self, t: np.ndarray) -> np.ndarray:
        # boundary j = 60 j is the first boundary strictly above t when j = floor(t / 60) + 1
        return np.clip(np.floor(t / 60.0).astype(np.int64) + 1, 0, self.num_minutes + 1)

    def add(self, starts: np.ndarray, ends: np.ndarray, weight: float = 1.0) -> None:
        if len(starts) == 0:
            return
        starts = np.asarray(starts, dtype=np.float64)
        ends = np.asarray(ends, dtype=np.float64)
        size = self.num_minutes + 2
        self._cnt += weight * np.bincount(self._bin(starts), minlength=size)[:size]
        self._sum += weight * np.bincount(self._bin(starts), weights=starts, minlength=size)[:size]
        self._cnt -= weight * np.bincount(self._bin(ends), minlength=size)[:size]
        self._sum -= weight * np.bincount(self._bin(ends), weights=ends, minlength=size)[:size]

    def minute_means(self) -> np.ndarray:
        b = 60.0 * np.arange(self.num_minutes + 1)
        integral = b * np.cumsum(self._cnt)[: self.num_minutes + 1] - np.cumsum(self._sum)[: self.num_minutes + 1]
        return np.diff(integral) / 60.0


def counts_per_minute(times: np.ndarray, num_minutes: int, weights: np.ndarray | None = None) -> np.ndarray:
    idx = np.clip(np.floor(np.asarray(times) / 60.0).astype(np.int64), 0, num_minutes - 1)
    return np.bincount(idx, weights=weights, minlength=num_minutes)[:num_minutes].astype(np.float64)


def total_length(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Total length of a list of intervals clipped to [lo, hi] (overlaps counted once each)."""
    if not intervals:
        return 0.0
    a = np.array(intervals, dtype=np.float64)
    return float(np.clip(np.minimum(a[:, 1], hi) - np.maximum(a[:, 0], lo), 0.0, None).sum())


def union_length(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Length of the union of intervals within [lo, hi]."""
    total, cur_a, cur_b = 0.0, None, None
    for a, b in sorted(intervals):
        a, b = max(a, lo), min(b, hi)
        if b <= a:
            continue
        if cur_b is None or a > cur_b:
            if cur_b is not None and cur_a is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None and cur_a is not None:
        total += cur_b - cur_a
    return total


def merged(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of intervals as disjoint intervals, in order (empty ones left out)."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def intersection(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The times inside both unions (of the intervals in `a`, and of those in `b`), as disjoint intervals."""
    x, y = merged(a), merged(b)
    out: list[tuple[float, float]] = []
    i = j = 0
    while i < len(x) and j < len(y):
        lo, hi = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if lo < hi:
            out.append((lo, hi))
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return out


class IntervalTally:
    """Intervals (a server's busy stretches) folded as they come into a clipped total and a per-minute level.

    A GPU server goes idle tens of thousands of times a day; keeping each stretch would make memory grow
    with the horizon. Intervals wait in two short lists and are folded into the running total (clipped to
    [lo, hi]) and a `LevelSeries` every `FLUSH` intervals, so memory stays bounded by the minute series.
    `record`, when a list, also receives every interval (tests that check them one by one).
    """

    FLUSH = 4096

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = lo, hi
        self.num_minutes = minutes_in(hi) if np.isfinite(hi) else 0
        self._level = LevelSeries(self.num_minutes) if self.num_minutes else None
        self._total = 0.0
        self._starts: list[float] = []
        self._ends: list[float] = []
        self.record: list[tuple[float, float]] | None = None

    def add(self, start: float, end: float) -> None:
        self._starts.append(start)
        self._ends.append(end)
        if self.record is not None:
            self.record.append((start, end))
        if len(self._starts) >= self.FLUSH:
            self._flush()

    def _flush(self) -> None:
        if not self._starts:
            return
        a = np.array(self._starts, dtype=np.float64)
        b = np.array(self._ends, dtype=np.float64)
        self._starts.clear()
        self._ends.clear()
        self._total += float(np.clip(np.minimum(b, self.hi) - np.maximum(a, self.lo), 0.0, None).sum())
        if self._level is not None:
            self._level.add(a, b)

    def total_length(self) -> float:
        """Total length of the intervals within [lo, hi]."""
        self._flush()
        return self._total

    def minute_means(self, num_minutes: int) -> np.ndarray:
        """Time-weighted mean number of open intervals in each of the first `num_minutes` minutes."""
        self._flush()
        out = np.zeros(num_minutes)
        if self._level is not None:
            means = self._level.minute_means()
            out[: min(num_minutes, len(means))] = means[:num_minutes]
        return out
