r"""Burstiness beyond Poisson: a doubly stochastic (Cox) rate.

The rate is lambda(t) * M(t), with M piecewise constant on a noise grid of step Delta (60 s, or finer so
that a correlation time holds at least 4 steps; Delta always divides 60 s, so the rate curve's steps are
whole multiples of it):

    M_k = exp(X_k - s^2 / 2),   X_k = phi X_{k-1} + sqrt(1 - phi^2) s eps_k,   eps_k ~ N(0, 1),
    s^2 = ln(1 + cv^2),        phi = exp(-Delta / correlation_s),

a stationary log-normal AR(1) (a sampled Ornstein-Uhlenbeck process in the log) with E[M] = 1,
CV[M] = cv and Cov(M_j, M_k) = exp(s^2 phi^|j-k|) - 1. Given M the arrivals are Poisson. For a constant
rate lambda, the count N in a window of length T starting on the noise grid has

    E[N] = lambda T,   Var[N] = lambda T + lambda^2 Var(\int_0^T M),
    index of dispersion D(T) = Var[N] / E[N] = 1 + lambda Var(\int_0^T M) / T,
    Var(\int_0^T M) = sum_{j,k} w_j w_k (exp(s^2 phi^|j-k|) - 1),

with w_j the length of the window inside noise step j. Under a time-varying curve D is local:
1 + (D - 1) lambda(t) / mean at the same cv. `cv_for_index_of_dispersion` solves cv from D at the mean rate.
"""

from __future__ import annotations

import math

import numpy as np

BASE_STEP_S = 60.0
MIN_STEPS_PER_CORRELATION = 4


def noise_step_s(correlation_s: float, base_step_s: float = BASE_STEP_S) -> float:
    """The noise grid step: base_step_s / k with the smallest k in 1..60 giving >= 4 steps per correlation."""
    k = math.ceil(MIN_STEPS_PER_CORRELATION * base_step_s / correlation_s - 1e-12)
    return base_step_s / min(max(k, 1), 60)


def integrated_variance(s2: float, phi: float, step_s: float, window_s: float) -> float:
    """Var of the integral of M over a grid-aligned window of window_s seconds."""
    m = int(math.floor(window_s / step_s + 1e-9))
    r = max(window_s - m * step_s, 0.0)
    if r < 1e-9 * step_s:
        r = 0.0
    lags = np.arange(m + 1, dtype=np.float64)
    c = np.expm1(s2 * phi**lags)
    full = np.maximum(m - lags, 0.0) * step_s * step_s  # pairs of full steps at each lag
    full[0] = m * step_s * step_s
    if r > 0:
        full[0] += r * r
        full[1:] += step_s * r  # the partial last step against each full step, at lag 1..m
    pair = full.copy()
    pair[1:] *= 2.0  # (j, k) and (k, j)
    return float(np.dot(pair, c))


def index_of_dispersion(rate: float, window_s: float, cv: float, correlation_s: float) -> float:
    """D(T) of counts in grid-aligned windows of window_s at a constant rate (see the module doc)."""
    step = noise_step_s(correlation_s)
    s2 = math.log1p(cv * cv)
    phi = math.exp(-step / correlation_s)
    return 1.0 + rate * integrated_variance(s2, phi, step, window_s) / window_s


def cv_for_index_of_dispersion(target: float, rate: float, window_s: float, correlation_s: float) -> float:
    """The cv whose D(window_s) at `rate` is `target` (> 1); ValueError if none is within cv <= 10."""
    if not target > 1:
        raise ValueError(f"index_of_dispersion must be > 1, got {target}")
    if not rate > 0:
        raise ValueError(f"an index of dispersion needs a positive mean rate, got {rate}")

    def excess(cv: float) -> float:
        return index_of_dispersion(rate, window_s, cv, correlation_s) - target

    if excess(10.0) < 0:
        raise ValueError(
            f"index_of_dispersion {target:g} at {window_s:g} s needs cv > 10 at mean_rps={rate:g}; "
            "raise correlation_s or window_s"
        )
    from scipy import optimize  # lazy: keeps scipy.optimize off start-up

    return float(optimize.brentq(excess, 1e-9, 10.0, xtol=1e-12, rtol=1e-10))


class LogNormalAR1:
    """The multiplier M_k, k = 0, 1, ..., generated in order on demand from one Generator."""

    def __init__(self, cv: float, correlation_s: float, rng: np.random.Generator):
        self.step_s = noise_step_s(correlation_s)
        self.s = math.sqrt(math.log1p(cv * cv))
        self.phi = math.exp(-self.step_s / correlation_s)
        self.rng = rng
        self.values = np.zeros(0)  # M_0 .. M_{n-1} generated so far (kept from `offset`)
        self.offset = 0
        self._x = self.s * float(rng.standard_normal())  # X_{-1}, stationary

    def take(self, k0: int, k1: int) -> np.ndarray:
        """M_k for k in [k0, k1); k0 must not go back before what an earlier call dropped."""
        end = self.offset + self.values.size
        if k1 > end:
            n = k1 - end
            eps = self.rng.standard_normal(n) * (math.sqrt(1.0 - self.phi**2) * self.s)
            from scipy import signal  # lazy: keeps scipy.signal off start-up

            x, _ = signal.lfilter([1.0], [1.0, -self.phi], eps, zi=[self.phi * self._x])
            self._x = float(x[-1])
            m = np.exp(x - 0.5 * self.s * self.s)
            self.values = np.concatenate([self.values, m])
        if k0 < self.offset:
            raise ValueError("noise values before the current block were dropped")
        out = self.values[k0 - self.offset : k1 - self.offset]
        # drop what lies before k0: blocks only move forward
        self.values = self.values[k0 - self.offset :]
        self.offset = k0
        return out
