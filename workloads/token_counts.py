"""Token counts: integer-valued versions of the size distributions (rounded, at least 1, within int64), with
means and variances of the discretised law, summed exactly or from continuous partial moments."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workloads.distributions import (
    INF,
    Constant,
    Distribution,
    Empirical,
    Exponential,
    Gamma,
    Geometric,
    Lognormal,
    Pareto,
    Uniform,
    _finite,
    make_distribution,
)

_MAX_BINS = 250_000  # integers summed explicitly; beyond, continuous partial moments (see below)


_MAX_TOKENS = float(2**62)  # samples are clipped here to stay within int64 (only absurd tails reach it)


_TAIL = 1e-14  # probability left outside the explicitly summed range, on each side


_Continuous = Exponential | Lognormal | Gamma | Uniform | Pareto

# mean and variance of each continuous law discretised so far, keyed by its repr (a few per workload class)
_MOMENTS: dict[str, tuple[float, float]] = {}


def _round_clip(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 1.0, _MAX_TOKENS).astype(np.int64)


def _degenerate_value(d: Distribution) -> float | None:
    if isinstance(d, Constant):
        return float(d.value)
    if isinstance(d, Lognormal) and d.sigma == 0:
        return float(d.median)
    if isinstance(d, Uniform) and d.high == d.low:
        return float(d.low)
    return None


def _bin_probabilities(frozen: Any, edges: np.ndarray) -> np.ndarray:
    """P(edges[i] < X <= edges[i+1]), using the CDF below the median and the survival function above,
    so that far-tail bins keep their relative precision."""
    med = float(frozen.median())
    n_low = int(np.searchsorted(edges, med, side="right"))  # edges[:n_low] <= median
    parts: list[np.ndarray] = []
    if n_low >= 2:
        parts.append(np.diff(frozen.cdf(edges[:n_low])))
    if 1 <= n_low < edges.size:
        parts.append(np.array([float(frozen.cdf(edges[n_low])) - float(frozen.cdf(edges[n_low - 1]))]))
    high = edges[max(n_low, 0) :]
    if high.size >= 2:
        parts.append(-np.diff(frozen.sf(high)))
    if not parts:
        return np.zeros(0)
    return np.maximum(np.concatenate(parts), 0.0)


def _discretised_moments(d: Distribution) -> tuple[float, float]:
    """Exact mean and variance of K = max(1, round(X))."""
    const = _degenerate_value(d)
    if const is not None:
        return float(max(1.0, float(np.rint(const)))), 0.0
    if isinstance(d, Geometric):
        return float(d.mean), float(d.variance)
    if isinstance(d, Empirical):
        k = _round_clip(d.values).astype(np.float64)
        return float(k.mean()), float(k.var())
    if not isinstance(d, _Continuous):
        raise TypeError(f"cannot discretise {d!r}")
    if not _finite(d.mean):
        return INF, INF
    want_var = _finite(d.variance)

    frozen = d._law()
    lo_q = float(frozen.ppf(_TAIL))
    hi_q = float(frozen.isf(_TAIL))
    lo = max(2, math.floor(lo_q)) if _finite(lo_q) else 2
    hi = math.ceil(hi_q) if _finite(hi_q) else lo + _MAX_BINS
    hi = min(hi, lo + _MAX_BINS)

    p1 = float(frozen.cdf(1.5))
    if hi >= lo:
        ks = np.arange(lo, hi + 1, dtype=np.float64)
        edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
        pk = _bin_probabilities(frozen, edges)
        cut = hi + 0.5
    else:
        ks = np.zeros(0)
        pk = np.zeros(0)
        cut = 1.5

    # mass between 1.5 and lo - 0.5 (below 1e-14) and above `cut`: continuous partial moments
    def gap(j: int) -> float:
        return d._partial(1.5, j) - d._partial(lo - 0.5, j) if lo > 2 else 0.0

    g0, g1 = gap(0), gap(1)
    t0, t1 = d._partial(cut, 0), d._partial(cut, 1)
    m1 = p1 + float(np.dot(ks, pk)) + g1 + t1
    if not want_var:
        return m1, INF
    g2, t2 = gap(2), d._partial(cut, 2)
    var = (
        p1 * (1.0 - m1) ** 2
        + float(np.dot((ks - m1) ** 2, pk))
        + (g2 - 2 * m1 * g1 + m1 * m1 * g0)
        + (t2 - 2 * m1 * t1 + m1 * m1 * t0)
    )
    return m1, max(var, 0.0)


@dataclass(frozen=True)
class TokenCount:
    """Integer token counts >= 1 drawn as max(1, round(X)) for X from `dist` (geometric: X itself)."""

    dist: Distribution

    @functools.cached_property
    def _moments(self) -> tuple[float, float]:
        if not isinstance(self.dist, _Continuous):  # exact in closed form or a mean of values: cheap
            return _discretised_moments(self.dist)
        # the same law in every configuration of a plan or a sweep: its sums (~0.1 s) are done once per process
        key = repr(self.dist)  # the family and each parameter's exact value and type
        if key not in _MOMENTS:
            _MOMENTS[key] = _discretised_moments(self.dist)
        return _MOMENTS[key]

    @property
    def mean(self) -> float:
        return self._moments[0]

    @property
    def variance(self) -> float:
        return self._moments[1]

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """int64 array of n token counts."""
        if isinstance(self.dist, Geometric):
            return rng.geometric(self.dist.p, n).astype(np.int64)
        return _round_clip(self.dist.sample(rng, n))


def make_token_distribution(spec: Any, base_dir: Path | None = None) -> TokenCount:
    return TokenCount(make_distribution(spec, base_dir))
