"""CDF, survival function and quantiles of the lognormal and exponential laws, computed with scipy.special as
scipy.stats computes them (the same formulas, loc 0, so the same bits), without importing scipy.stats (~0.9 s
of a one-hour run, where these are needed only for the token counts' exact means).

workloads/token_counts.py sums a discretised law's bins with these; tests/test_token_count_laws.py checks each
against scipy.stats' frozen law bit for bit. Gamma, uniform and Pareto still use scipy.stats (none of the
shipped experiments' hot paths has them as a token count in a one-hour run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special


@dataclass(frozen=True)
class LognormalLaw:
    """scipy.stats.lognorm(s=sigma, scale=median): cdf(x) = ndtr(log(x / median) / sigma)."""

    sigma: float
    median_: float

    def median(self) -> Any:
        return self.ppf(0.5)

    def cdf(self, x: Any) -> Any:
        return special.ndtr(np.log(np.asarray(x, dtype=np.float64) / self.median_) / self.sigma)

    def sf(self, x: Any) -> Any:
        return special.ndtr(-(np.log(np.asarray(x, dtype=np.float64) / self.median_) / self.sigma))

    def ppf(self, q: Any) -> Any:
        return np.exp(self.sigma * special.ndtri(np.asarray(q, dtype=np.float64))) * self.median_

    def isf(self, q: Any) -> Any:
        return np.exp(self.sigma * -special.ndtri(np.asarray(q, dtype=np.float64))) * self.median_


@dataclass(frozen=True)
class ExponentialLaw:
    """scipy.stats.expon(scale=mean): cdf(x) = -expm1(-x / mean)."""

    mean: float

    def median(self) -> Any:
        return self.ppf(0.5)

    def cdf(self, x: Any) -> Any:
        return -special.expm1(-(np.asarray(x, dtype=np.float64) / self.mean))

    def sf(self, x: Any) -> Any:
        return np.exp(-(np.asarray(x, dtype=np.float64) / self.mean))

    def ppf(self, q: Any) -> Any:
        return -special.log1p(-np.asarray(q, dtype=np.float64)) * self.mean

    def isf(self, q: Any) -> Any:
        return -np.log(np.asarray(q, dtype=np.float64)) * self.mean
