r"""Arrival-rate curves and exact non-homogeneous Poisson arrivals.

A `RateCurve` is piecewise constant on a grid of `step_s` seconds (default 60 s) starting at t = 0, the
00:00 of `start_weekday`. Each step's rate is the exact average of the underlying continuous curve over
that step, so the expected number of arrivals over any union of steps is exact. Its cumulative
Lambda(t) = \int_0^t lambda(u) du is piecewise linear; beyond the end of the grid the rate is 0.
The curves themselves (constant, diurnal, hourly, profiles, time zones) are built in workloads.shapes.

Arrivals in [t0, t1) are a Poisson process with that rate: N ~ Poisson(Lambda(t1) - Lambda(t0)), then
N sorted uniforms on [Lambda(t0), Lambda(t1)) mapped through Lambda^{-1}. Zero-rate steps never receive
an arrival.
"""

from __future__ import annotations

import math

import numpy as np


class RateCurve:
    """Piecewise-constant arrival rate (requests/s) on steps [k*step_s, (k+1)*step_s)."""

    __slots__ = ("rates", "step_s", "grid", "cum")

    def __init__(self, rates: np.ndarray, step_s: float = 60.0) -> None:
        r = np.array(rates, dtype=np.float64).ravel()
        if not (math.isfinite(step_s) and step_s > 0):
            raise ValueError(f"step_s must be > 0, got {step_s}")
        if r.size == 0:
            raise ValueError("a rate curve needs at least one step")
        if not np.isfinite(r).all() or (r < 0).any():
            raise ValueError("rates must be finite and >= 0")
        r.setflags(write=False)
        self.rates: np.ndarray = r
        self.step_s: float = float(step_s)
        grid = np.arange(r.size + 1, dtype=np.float64) * self.step_s
        cum = np.empty(r.size + 1)
        cum[0] = 0.0
        np.cumsum(r * self.step_s, out=cum[1:])
        grid.setflags(write=False)
        cum.setflags(write=False)
        self.grid: np.ndarray = grid
        self.cum: np.ndarray = cum

    def __repr__(self) -> str:
        return f"RateCurve(steps={self.rates.size}, step_s={self.step_s:g}, total={self.cum[-1]:.6g})"

    @property
    def horizon_s(self) -> float:
        """End of the grid (the curve is 0 beyond)."""
        return float(self.grid[-1])

    @property
    def mean_rate(self) -> float:
        return float(self.cum[-1] / self.grid[-1])

    def scaled(self, factor: float) -> RateCurve:
        """The same shape with every rate multiplied by `factor` (>= 0)."""
        return RateCurve(self.rates * float(factor), self.step_s)

    def rate_at(self, t: float | np.ndarray) -> float | np.ndarray:
        """lambda(t); 0 outside [0, horizon_s)."""
        ta = np.asarray(t, dtype=np.float64)
        idx = np.floor(ta / self.step_s)
        inside = (ta >= 0) & (idx < self.rates.size)
        k = np.clip(idx, 0, self.rates.size - 1).astype(np.int64)
        out = np.where(inside, self.rates[k], 0.0)
        return float(out) if out.ndim == 0 else out

    def cumulative(self, t: float | np.ndarray) -> float | np.ndarray:
        """Lambda(t) = integral of the rate over [0, t] (t clipped to the grid)."""
        out = np.interp(np.asarray(t, dtype=np.float64), self.grid, self.cum)
        return float(out) if np.ndim(out) == 0 else out

    def total(self, t0: float, t1: float) -> float:
        """Expected number of arrivals in [t0, t1)."""
        return float(self.cumulative(t1)) - float(self.cumulative(t0))

    def inverse_cumulative(self, lam: float | np.ndarray) -> float | np.ndarray:
        """The t in a positive-rate step with Lambda(t) = lam (the left end of the flat stretch's successor
        where lam sits exactly on a step boundary); lam is clipped to [0, Lambda(horizon)). Results lie in
        [k*step_s, (k+1)*step_s) of a step k with a positive rate."""
        la = np.asarray(lam, dtype=np.float64)
        total = self.cum[-1]
        if total <= 0:
            out = np.zeros_like(la)
        else:
            la = np.clip(la, 0.0, np.nextafter(total, -np.inf))
            k = np.searchsorted(self.cum, la, side="right") - 1  # cum[k] <= la < cum[k+1]: rates[k] > 0
            k = np.clip(k, 0, self.rates.size - 1)
            out = self.grid[k] + (la - self.cum[k]) / self.rates[k]
            out = np.minimum(out, np.nextafter(self.grid[k + 1], -np.inf))
            out = np.maximum(out, self.grid[k])
        return float(out) if out.ndim == 0 else out


def poisson_arrivals(curve: RateCurve, t0: float, t1: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times in [t0, t1) of a Poisson process with the curve's rate (float64)."""
    if not t1 > t0:
        return np.zeros(0)
    l0 = float(curve.cumulative(t0))
    l1 = float(curve.cumulative(t1))
    expected = l1 - l0
    if expected <= 0:
        return np.zeros(0)
    n = int(rng.poisson(expected))
    if n == 0:
        return np.zeros(0)
    u = rng.random(n)
    u.sort()
    lam = l0 + u * expected
    np.minimum(lam, np.nextafter(l1, -np.inf), out=lam)
    times = np.asarray(curve.inverse_cumulative(lam), dtype=np.float64)
    np.clip(times, t0, np.nextafter(t1, -np.inf), out=times)
    return times
