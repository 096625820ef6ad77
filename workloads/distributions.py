"""Runtime distribution objects (the config specs live in sim.config.distributions).

Each family is a small frozen dataclass with exact `mean` and `variance` (closed forms, `inf` where the
moment is infinite) and a vectorised `sample(rng, n)` that draws from the given numpy Generator only.

Token counts (workloads/token_counts.py) are integers >= 1: `TokenCount` wraps a distribution and rounds
its samples to the nearest integer, clipped below at 1 (geometric samples are integers already). Its `mean`
and `variance` are the exact moments of that discretised law, computed from the continuous CDF:
P(K = 1) = F(1.5), P(K = k) = F(k + 0.5) - F(k - 0.5) for k >= 2, summed over the range that holds all but
1e-14 of the mass (at most `_MAX_BINS` integers); whatever lies beyond that range is added with the
closed-form partial moments E[X^j; X > c] of the continuous law. Out there rounding averages out: the
error is of the order of P(X > c) / 12, far below 1e-12 of the moments for any family and parameters
the configs allow (c >= 250 000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sim.config.distributions import (
    ConstantSpec,
    EmpiricalSpec,
    ExponentialSpec,
    GammaSpec,
    GeometricSpec,
    LognormalSpec,
    ParetoSpec,
    UniformSpec,
)

INF = float("inf")


@runtime_checkable
class Distribution(Protocol):
    """What every runtime distribution offers."""

    @property
    def mean(self) -> float: ...

    @property
    def variance(self) -> float: ...

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray: ...


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def _finite(x: float) -> bool:
    return math.isfinite(x)


@dataclass(frozen=True)
class Constant:
    value: float

    def __post_init__(self) -> None:
        _check(_finite(self.value), f"constant value must be finite, got {self.value}")

    @property
    def mean(self) -> float:
        return float(self.value)

    @property
    def variance(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, float(self.value), dtype=np.float64)


@dataclass(frozen=True)
class Exponential:
    mean: float

    def __post_init__(self) -> None:
        _check(_finite(self.mean) and self.mean > 0, f"exponential mean must be > 0, got {self.mean}")

    @property
    def variance(self) -> float:
        return float(self.mean) ** 2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean, n)

    def _law(self) -> Any:
        from workloads.laws import ExponentialLaw  # scipy.stats' expon without its import (~0.9 s)

        return ExponentialLaw(float(self.mean))

    def _partial(self, c: float, j: int) -> float:
        """E[X^j; X > c]."""
        m = float(self.mean)
        c = max(c, 0.0)
        e = math.exp(-c / m)
        if j == 0:
            return e
        if j == 1:
            return (c + m) * e
        return (c * c + 2 * c * m + 2 * m * m) * e


@dataclass(frozen=True)
class Geometric:
    """Integers >= 1 with P(k) = p (1-p)^(k-1), p = 1/mean."""

    mean: float

    def __post_init__(self) -> None:
        _check(_finite(self.mean) and self.mean >= 1, f"geometric mean must be >= 1, got {self.mean}")

    @property
    def p(self) -> float:
        return 1.0 / float(self.mean)

    @property
    def variance(self) -> float:
        p = self.p
        return (1.0 - p) / (p * p)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.geometric(self.p, n).astype(np.float64)


@dataclass(frozen=True)
class Lognormal:
    """exp(N(ln median, sigma^2))."""

    median: float
    sigma: float

    def __post_init__(self) -> None:
        _check(_finite(self.median) and self.median > 0, f"lognormal median must be > 0, got {self.median}")
        _check(_finite(self.sigma) and self.sigma >= 0, f"lognormal sigma must be >= 0, got {self.sigma}")

    @property
    def mean(self) -> float:
        return float(self.median) * math.exp(0.5 * self.sigma**2)

    @property
    def variance(self) -> float:
        s2 = float(self.sigma) ** 2
        return float(self.median) ** 2 * math.exp(s2) * math.expm1(s2)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.median * np.exp(self.sigma * rng.standard_normal(n))

    def _law(self) -> Any:
        from workloads.laws import LognormalLaw  # scipy.stats' lognorm without its import (~0.9 s)

        return LognormalLaw(float(self.sigma), float(self.median))

    def _partial(self, c: float, j: int) -> float:
        mu, s = math.log(self.median), float(self.sigma)
        full = math.exp(j * mu + 0.5 * j * j * s * s)
        if c <= 0:
            return full
        from scipy import special  # lazy: scipy.stats costs ~0.5 s to import

        return full * float(special.ndtr((mu + j * s * s - math.log(c)) / s))


@dataclass(frozen=True)
class Gamma:
    """Gamma with the given mean and coefficient of variation: shape 1/cv^2, scale mean*cv^2."""

    mean: float
    cv: float

    def __post_init__(self) -> None:
        _check(_finite(self.mean) and self.mean > 0, f"gamma mean must be > 0, got {self.mean}")
        _check(_finite(self.cv) and self.cv > 0, f"gamma cv must be > 0, got {self.cv}")

    @property
    def shape(self) -> float:
        return 1.0 / float(self.cv) ** 2

    @property
    def scale(self) -> float:
        return float(self.mean) * float(self.cv) ** 2

    @property
    def variance(self) -> float:
        return (float(self.mean) * float(self.cv)) ** 2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.gamma(self.shape, self.scale, n)

    def _law(self) -> Any:
        from scipy import stats  # lazy: scipy.stats costs ~0.5 s to import

        return stats.gamma(a=self.shape, scale=self.scale)

    def _partial(self, c: float, j: int) -> float:
        a, th = self.shape, self.scale
        factor = 1.0 if j == 0 else (a * th if j == 1 else a * (a + 1) * th * th)
        if c <= 0:
            return factor
        from scipy import special  # lazy: scipy.stats costs ~0.5 s to import

        return factor * float(special.gammaincc(a + j, c / th))


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def __post_init__(self) -> None:
        _check(
            _finite(self.low) and _finite(self.high) and self.high >= self.low,
            f"uniform needs finite low <= high, got low={self.low}, high={self.high}",
        )

    @property
    def mean(self) -> float:
        return 0.5 * (float(self.low) + float(self.high))

    @property
    def variance(self) -> float:
        return (float(self.high) - float(self.low)) ** 2 / 12.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)

    def _law(self) -> Any:
        from scipy import stats  # lazy: scipy.stats costs ~0.5 s to import

        return stats.uniform(loc=self.low, scale=self.high - self.low)

    def _partial(self, c: float, j: int) -> float:
        lo, hi = float(self.low), float(self.high)
        c = max(c, lo)
        if c >= hi:
            return 0.0
        return (hi ** (j + 1) - c ** (j + 1)) / ((j + 1) * (hi - lo))


@dataclass(frozen=True)
class Pareto:
    """Classical Pareto with minimum `scale`: scale * (1 + Lomax(alpha)); P(X > x) = (scale/x)^alpha."""

    scale: float
    alpha: float

    def __post_init__(self) -> None:
        _check(_finite(self.scale) and self.scale > 0, f"pareto scale must be > 0, got {self.scale}")
        _check(_finite(self.alpha) and self.alpha > 0, f"pareto alpha must be > 0, got {self.alpha}")

    @property
    def mean(self) -> float:
        a = float(self.alpha)
        return a * float(self.scale) / (a - 1.0) if a > 1 else INF

    @property
    def variance(self) -> float:
        a = float(self.alpha)
        if a <= 2:
            return INF
        return float(self.scale) ** 2 * a / ((a - 1.0) ** 2 * (a - 2.0))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.scale * (1.0 + rng.pareto(self.alpha, n))

    def _law(self) -> Any:
        from scipy import stats  # lazy: scipy.stats costs ~0.5 s to import

        return stats.pareto(b=self.alpha, scale=self.scale)

    def _partial(self, c: float, j: int) -> float:
        a, xm = float(self.alpha), float(self.scale)
        if a <= j:
            return INF
        c = max(c, xm)
        return a * xm**a * c ** (j - a) / (a - j)


@dataclass(frozen=True, eq=False)
class Empirical:
    """Uniform resampling, with replacement, of the given values (compared by identity)."""

    values: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        v = np.array(self.values, dtype=np.float64).ravel()
        _check(v.size > 0, "empirical distribution needs at least one value")
        _check(bool(np.isfinite(v).all()), "empirical values must be finite")
        v.setflags(write=False)
        object.__setattr__(self, "values", v)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def variance(self) -> float:
        return float(np.var(self.values))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.values[rng.integers(0, self.values.size, n)]

    def __repr__(self) -> str:
        return f"Empirical(n={self.values.size}, mean={self.mean:.6g})"


def make_distribution(spec: Any, base_dir: Path | None = None) -> Distribution:
    """The runtime object of a config spec; an empirical file is looked up relative to `base_dir`."""
    if isinstance(spec, ConstantSpec):
        return Constant(spec.value)
    if isinstance(spec, ExponentialSpec):
        return Exponential(spec.mean)
    if isinstance(spec, GeometricSpec):
        return Geometric(spec.mean)
    if isinstance(spec, LognormalSpec):
        return Lognormal(spec.median, spec.sigma)
    if isinstance(spec, GammaSpec):
        return Gamma(spec.mean, spec.cv)
    if isinstance(spec, UniformSpec):
        return Uniform(spec.low, spec.high)
    if isinstance(spec, ParetoSpec):
        return Pareto(spec.scale, spec.alpha)
    if isinstance(spec, EmpiricalSpec):
        from workloads.files import read_column

        return Empirical(read_column(spec.file, spec.column, base_dir))
    raise TypeError(f"not a distribution spec: {spec!r}")
