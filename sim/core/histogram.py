"""Mergeable log-bucket histogram for non-negative values (latencies, token counts).

Layout
------
Every :class:`LogHistogram` shares one fixed, global bucket layout, so two histograms
merge by adding their count arrays (after aligning offsets):

* values ``v < MIN_VALUE`` go to the *underflow* ("zero") bucket; a quantile that lands
  there is reported as the exact minimum seen (which is 0 when zeros were added);
* values ``MIN_VALUE <= v <= MAX_VALUE`` go to geometric bucket
  ``i = floor(log(v / MIN_VALUE) / log(GAMMA))``, which covers
  ``[MIN_VALUE * GAMMA**i, MIN_VALUE * GAMMA**(i + 1))``; a quantile that lands there is
  reported as the bucket's geometric midpoint ``MIN_VALUE * GAMMA**(i + 0.5)``, whose
  relative distance to any value of the bucket is at most ``sqrt(GAMMA) - 1 ~= 0.09995%``;
* values ``v > MAX_VALUE`` go to the *overflow* bucket; a quantile that lands there is
  reported as the exact maximum seen.

Reported quantiles are additionally clamped to the exact ``[min, max]`` seen, which can
only move them closer to the true value.

Storage is lazy: the regular-bucket counts are a dense ``int64`` array covering only the
bucket index range actually used (``offset`` .. ``offset + len(counts) - 1``), grown on
demand, so an empty histogram holds no array and a typical one a few hundred to a few
thousand integers.

Quantile definition
-------------------
``quantile(q)`` estimates the *lower empirical quantile*: the smallest sample value ``v``
such that at least ``rank = max(1, ceil(q * count))`` of the values are ``<= v``.  This is
numpy's ``np.quantile(x, q, method="inverted_cdf")``; ``q = 0`` gives the exact minimum
and ``q = 1`` the exact maximum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["GAMMA", "MAX_VALUE", "MIN_VALUE", "NUM_BUCKETS", "LogHistogram"]

MIN_VALUE: float = 1e-6
"""Smallest value that gets a regular bucket; anything below goes to the underflow bucket."""

MAX_VALUE: float = 1e7
"""Largest value that gets a regular bucket; anything above goes to the overflow bucket."""

GAMMA: float = 1.002
"""Ratio between consecutive bucket boundaries (relative half-width ~0.1%)."""

LOG_GAMMA: float = math.log(GAMMA)

NUM_BUCKETS: int = math.ceil(math.log(MAX_VALUE / MIN_VALUE) / LOG_GAMMA)
"""Number of regular buckets; valid regular indices are ``0 .. NUM_BUCKETS - 1``."""

_EMPTY = np.zeros(0, dtype=np.int64)


def bucket_index(values: np.ndarray) -> np.ndarray:
    """Regular-bucket index of each value in ``[MIN_VALUE, MAX_VALUE]`` (vectorised)."""
    v = np.asarray(values, dtype=np.float64)
    idx = np.floor(np.log(v / MIN_VALUE) / LOG_GAMMA).astype(np.int64)
    # Guard against rounding at the two ends of the regular range.
    return np.clip(idx, 0, NUM_BUCKETS - 1)


def bucket_midpoint(index: np.ndarray | int) -> np.ndarray | float:
    """Geometric midpoint ``MIN_VALUE * GAMMA**(index + 0.5)`` of regular bucket(s)."""
    return MIN_VALUE * np.exp((np.asarray(index, dtype=np.float64) + 0.5) * LOG_GAMMA)


class LogHistogram:
    """Mergeable log-bucket histogram with <= 0.1% relative error on quantiles.

    See the module docstring for the bucket layout and the quantile definition.
    ``count``, ``sum``, ``min`` and ``max`` are exact (``sum`` is the float sum of the
    values added; merging adds sums, so it is exact up to float rounding).
    """

    __slots__ = ("_counts", "_max", "_min", "_offset", "_overflow", "_sum", "_zero")

    def __init__(self, values: np.ndarray | Iterable[float] | None = None) -> None:
        self._offset: int = 0
        self._counts: np.ndarray = _EMPTY
        self._zero: int = 0
        self._overflow: int = 0
        self._sum: float = 0.0
        self._min: float | None = None
        self._max: float | None = None
        if values is not None:
            self.add(values)

    # ------------------------------------------------------------------ building
    def add(self, values: np.ndarray | Iterable[float] | float) -> LogHistogram:
        """Add values (array-like or scalar); returns self.

        Raises ``ValueError`` on NaN, negative or infinite values (nothing is added then).
        """
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return self
        if not np.isfinite(v).all() or (v < 0).any():
            raise ValueError("LogHistogram values must be finite and non-negative (got NaN, inf or < 0)")

        vmin = float(v.min())
        vmax = float(v.max())
        self._min = vmin if self._min is None else min(self._min, vmin)
        self._max = vmax if self._max is None else max(self._max, vmax)
        self._sum += float(np.sum(v))

        under = v < MIN_VALUE
        over = v > MAX_VALUE
        n_under = int(np.count_nonzero(under))
        n_over = int(np.count_nonzero(over))
        self._zero += n_under
        self._overflow += n_over
        if n_under or n_over:
            v = v[~(under | over)]
        if v.size:
            idx = bucket_index(v)
            lo = int(idx.min())
            binned = np.bincount(idx - lo)
            self._add_counts(lo, binned)
        return self

    def _add_counts(self, offset: int, counts: np.ndarray) -> None:
        """Add a dense count block starting at regular index ``offset`` (grows storage)."""
        if counts.size == 0:
            return
        if self._counts.size == 0:
            self._offset = offset
            self._counts = counts.astype(np.int64, copy=True)
            return
        lo = min(self._offset, offset)
        hi = max(self._offset + self._counts.size, offset + counts.size)
        if lo == self._offset and hi == self._offset + self._counts.size:
            # Fits in the current array: add in place (safe even when ``counts`` aliases it).
            self._counts[offset - lo : offset - lo + counts.size] += counts
            return
        new = np.zeros(hi - lo, dtype=np.int64)
        new[self._offset - lo : self._offset - lo + self._counts.size] = self._counts
        new[offset - lo : offset - lo + counts.size] += counts
        self._offset = lo
        self._counts = new

    def merge(self, other: LogHistogram) -> LogHistogram:
        """Add ``other``'s counts into this histogram in place; returns self."""
        if not isinstance(other, LogHistogram):
            raise TypeError(f"can only merge a LogHistogram, not {type(other).__name__}")
        if other.count == 0:
            return self
        # Snapshot other's state first so that h.merge(h) doubles correctly.
        o_offset, o_counts = other._offset, other._counts.copy()
        o_zero, o_over, o_sum, o_min, o_max = other._zero, other._overflow, other._sum, other._min, other._max
        self._add_counts(o_offset, o_counts)
        self._zero += o_zero
        self._overflow += o_over
        self._sum += o_sum
        self._min = o_min if self._min is None else min(self._min, o_min)  # type: ignore[type-var]
        self._max = o_max if self._max is None else max(self._max, o_max)  # type: ignore[type-var]
        return self

    def copy(self) -> LogHistogram:
        """An independent copy."""
        h = LogHistogram()
        h._offset = self._offset
        h._counts = self._counts.copy()
        h._zero, h._overflow, h._sum = self._zero, self._overflow, self._sum
        h._min, h._max = self._min, self._max
        return h

    # ------------------------------------------------------------------ summary
    @property
    def count(self) -> int:
        """Number of values added."""
        return self._zero + self._overflow + int(self._counts.sum())

    @property
    def sum(self) -> float:
        """Float sum of the values added (exact values, not bucket approximations)."""
        return self._sum

    @property
    def mean(self) -> float | None:
        """``sum / count``, or None when empty."""
        n = self.count
        return self._sum / n if n else None

    @property
    def min(self) -> float | None:
        """Exact minimum, or None when empty."""
        return self._min

    @property
    def max(self) -> float | None:
        """Exact maximum, or None when empty."""
        return self._max

    @property
    def offset(self) -> int:
        """Regular-bucket index of ``counts[0]``."""
        return self._offset

    @property
    def counts(self) -> np.ndarray:
        """Read-only view of the dense regular-bucket counts (starting at ``offset``)."""
        view = self._counts.view()
        view.flags.writeable = False
        return view

    @property
    def zero_count(self) -> int:
        """Number of values below ``MIN_VALUE`` (underflow bucket)."""
        return self._zero

    @property
    def overflow_count(self) -> int:
        """Number of values above ``MAX_VALUE`` (overflow bucket)."""
        return self._overflow

    def quantile(self, q: float) -> float | None:
        """Lower empirical quantile estimate (see module docstring); None when empty."""
        res = self.quantiles([q])
        return None if res is None else res[0]

    def quantiles(self, qs: Iterable[float]) -> list[float] | None:
        """``[quantile(q) for q in qs]`` computed with one cumulative pass; None when empty."""
        qs = [float(q) for q in qs]
        for q in qs:
            if not 0.0 <= q <= 1.0:  # also rejects NaN
                raise ValueError(f"quantile q must be in [0, 1], got {q}")
        n = self.count
        if n == 0:
            return None
        assert self._min is not None and self._max is not None
        vmin, vmax = self._min, self._max
        cum = np.cumsum(self._counts) if self._counts.size else _EMPTY
        regular_total = int(cum[-1]) if cum.size else 0
        out: list[float] = []
        for q in qs:
            if q == 0.0:
                out.append(vmin)
                continue
            if q == 1.0:
                out.append(vmax)
                continue
            # Same float arithmetic as numpy's inverted_cdf: rank = ceil(n * q), at least 1.
            out.append(self._at_rank(max(1, math.ceil(q * n)), cum, regular_total))
        return out

    def value_at_rank(self, rank: int) -> float:
        """The rank-th smallest value (1-based, 1 <= rank <= count), as `quantile` estimates it."""
        if not 1 <= rank <= self.count:
            raise ValueError(f"rank must be in [1, {self.count}], got {rank}")
        cum = np.cumsum(self._counts) if self._counts.size else _EMPTY
        return self._at_rank(rank, cum, int(cum[-1]) if cum.size else 0)

    def _at_rank(self, rank: int, cum: np.ndarray, regular_total: int) -> float:
        assert self._min is not None and self._max is not None
        vmin, vmax = self._min, self._max
        if rank <= self._zero:
            return vmin
        r = rank - self._zero
        if r > regular_total:
            return vmax
        pos = int(np.searchsorted(cum, r, side="left"))
        value = float(bucket_midpoint(self._offset + pos))
        return min(max(value, vmin), vmax)

    # ------------------------------------------------------------------ plain data
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able representation (cheap to pickle / return across processes)."""
        return {
            "min_value": MIN_VALUE,
            "max_value": MAX_VALUE,
            "gamma": GAMMA,
            "offset": int(self._offset),
            "counts": self._counts.tolist(),
            "zero_count": int(self._zero),
            "overflow_count": int(self._overflow),
            "count": int(self.count),
            "sum": float(self._sum),
            "min": self._min,
            "max": self._max,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogHistogram:
        """Inverse of :meth:`to_dict`; validates layout and consistency (ValueError)."""
        for key, expected in (("min_value", MIN_VALUE), ("max_value", MAX_VALUE), ("gamma", GAMMA)):
            if key in data and float(data[key]) != expected:
                raise ValueError(f"histogram layout mismatch: {key}={data[key]!r}, expected {expected!r}")
        counts = np.asarray(data.get("counts", []), dtype=np.int64).ravel()
        offset = int(data.get("offset", 0))
        zero = int(data.get("zero_count", 0))
        over = int(data.get("overflow_count", 0))
        if (counts < 0).any() or zero < 0 or over < 0:
            raise ValueError("histogram counts must be non-negative")
        nz = np.flatnonzero(counts)
        if nz.size:
            first, last = int(nz[0]), int(nz[-1])
            counts = counts[first : last + 1].copy()
            offset += first
            if offset < 0 or offset + counts.size > NUM_BUCKETS:
                raise ValueError("histogram bucket range outside the global layout")
        else:
            counts, offset = _EMPTY, 0
        h = cls()
        h._offset, h._counts, h._zero, h._overflow = offset, counts, zero, over
        h._sum = float(data.get("sum", 0.0))
        n = h.count
        if "count" in data and int(data["count"]) != n:
            raise ValueError(f"histogram count {data['count']} != sum of bucket counts {n}")
        mn, mx = data.get("min"), data.get("max")
        if n:
            if mn is None or mx is None:
                raise ValueError("non-empty histogram needs min and max")
            h._min, h._max = float(mn), float(mx)
        return h

    # ------------------------------------------------------------------ dunder
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogHistogram):
            return NotImplemented
        return (
            self._offset == other._offset
            and np.array_equal(self._counts, other._counts)
            and self._zero == other._zero
            and self._overflow == other._overflow
            and self._sum == other._sum
            and self._min == other._min
            and self._max == other._max
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        if self.count == 0:
            return "LogHistogram(count=0)"
        p50, p99 = self.quantiles([0.5, 0.99])  # type: ignore[misc]
        return (
            f"LogHistogram(count={self.count}, mean={self.mean:.6g}, min={self._min:.6g}, "
            f"p50={p50:.6g}, p99={p99:.6g}, max={self._max:.6g})"
        )

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        h = LogHistogram.from_dict(state)
        for name in self.__slots__:
            setattr(self, name, getattr(h, name))
