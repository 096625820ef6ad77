r"""Arrival-rate curves and exact non-homogeneous Poisson arrivals.

A `RateCurve` is piecewise constant on a grid of `step_s` seconds (default 60 s) starting at t = 0, the
00:00 of `start_weekday`. Each step's rate is the exact average of the underlying continuous curve over
that step, so the expected number of arrivals over any union of steps is exact. Its cumulative
Lambda(t) = \int_0^t lambda(u) du is piecewise linear; beyond the end of the grid the rate is 0.

Arrivals in [t0, t1) are a Poisson process with that rate: N ~ Poisson(Lambda(t1) - Lambda(t0)), then
N sorted uniforms on [Lambda(t0), Lambda(t1)) mapped through Lambda^{-1}. Zero-rate steps never receive
an arrival.

Curves (kind in `workload.arrivals`):

* ``constant``: lambda(t) = mean_rps.
* ``diurnal``: lambda(t) = mean_rps * f(h(t)) * w(d(t)), with h the hour of day, d the day index and

      f(h) = exp(kappa * cos(2 pi (h - peak_hour) / 24)) / I0(kappa)

  (a von Mises shape; I0 is the modified Bessel function, so the mean of f over a day is exactly 1).
  kappa >= 0 solves max f = exp(kappa) / I0(kappa) = peak_to_mean (kappa = 0, a flat day, when
  peak_to_mean = 1), see `diurnal_kappa`. w(d) = weekend_factor on Saturdays and Sundays, 1 otherwise.
  The daily integral of f is computed once per (kappa, peak_hour) at 1 s resolution with Simpson's rule
  (periodic integrand: errors ~1e-13), and within a second with a 3-point Simpson rule.
* ``hourly``: f is piecewise constant per hour with the 24 multipliers normalised to mean 1, and the
  same weekday factor w.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special

from sim.config.workload import ArrivalsSpec
from sim.core.calendar import DAY_S, HOUR_S, WEEKDAYS


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


# ---------------------------------------------------------------------------------------------------
# curve construction


def diurnal_kappa(peak_to_mean: float) -> float:
    """kappa >= 0 with exp(kappa) / I0(kappa) = peak_to_mean (0 for a flat day)."""
    if not (math.isfinite(peak_to_mean) and peak_to_mean >= 1):
        raise ValueError(f"peak_to_mean must be >= 1, got {peak_to_mean}")
    if peak_to_mean == 1:
        return 0.0
    target = math.log(peak_to_mean)

    def h(k: float) -> float:  # log(e^k / I0(k)) - log(peak_to_mean), increasing in k
        return -math.log(float(special.i0e(k))) - target

    hi = 1.0
    while h(hi) < 0:
        hi *= 2.0
    lo = 0.0  # bisection on a monotone function (scipy.optimize would add ~0.2 s to start-up)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if h(mid) < 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-14 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def _diurnal_shape(s: np.ndarray, kappa: float, peak_s: float) -> np.ndarray:
    """f at seconds-of-day s: exp(kappa cos(2 pi (s - peak_s) / 86400)) / I0(kappa), overflow-safe."""
    theta = (2.0 * np.pi / DAY_S) * (s - peak_s)
    return np.exp(kappa * (np.cos(theta) - 1.0)) / special.i0e(kappa)


@functools.lru_cache(maxsize=16)
def _diurnal_day_integral(kappa: float, peak_s: float) -> np.ndarray:
    """G[i] = integral of f over [0, i] seconds, i = 0..86400 (Simpson on each second), G[-1] = 86400."""
    half = _diurnal_shape(np.arange(2 * int(DAY_S) + 1) * 0.5, kappa, peak_s)
    per_second = (half[0:-1:2] + 4.0 * half[1::2] + half[2::2]) / 6.0
    g = np.empty(int(DAY_S) + 1)
    g[0] = 0.0
    np.cumsum(per_second, out=g[1:])
    g *= DAY_S / g[-1]  # exactly one mean-rate day (the periodic rule is already accurate to ~1e-15)
    g.setflags(write=False)
    return g


def _hourly_day_integral(multipliers: list[float]) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(multipliers, dtype=np.float64)
    m = m / m.mean()
    g = np.concatenate([[0.0], np.cumsum(m) * HOUR_S])
    g[-1] = DAY_S
    return m, g


def _weekday_factors(start_weekday: str, n_days: int, weekend_factor: float) -> np.ndarray:
    try:
        start = WEEKDAYS.index(start_weekday.lower()[:3])
    except ValueError:
        allowed = ", ".join(WEEKDAYS)
        raise ValueError(f"start_weekday must be one of {allowed}, got {start_weekday!r}") from None
    dow = (start + np.arange(n_days)) % 7
    return np.where(dow >= 5, float(weekend_factor), 1.0)


def make_rate_curve(spec: ArrivalsSpec, start_weekday: str, horizon_s: float, step_s: float = 60.0) -> RateCurve:
    """The rate curve of a `constant`, `diurnal` or `hourly` arrivals spec over [0, horizon_s), on
    ceil(horizon_s / step_s) steps (the last one may reach past the horizon)."""
    if not (math.isfinite(horizon_s) and horizon_s > 0):
        raise ValueError(f"horizon_s must be > 0, got {horizon_s}")
    if not (math.isfinite(step_s) and step_s > 0):
        raise ValueError(f"step_s must be > 0, got {step_s}")
    n = max(1, math.ceil(horizon_s / step_s - 1e-9))
    kind = spec.kind
    if kind == "constant":
        return RateCurve(np.full(n, float(spec.mean_rps)), step_s)
    if kind not in ("diurnal", "hourly"):
        raise ValueError(f"arrivals kind {kind!r} has no rate curve")

    t = np.arange(n + 1, dtype=np.float64) * step_s
    day = np.floor(t / DAY_S)
    s = t - day * DAY_S
    day_i = day.astype(np.int64)
    w = _weekday_factors(start_weekday, int(day_i[-1]) + 1, spec.weekend_factor)
    before = np.concatenate([[0.0], np.cumsum(w)]) * DAY_S  # integral of w over the days before day d

    if kind == "diurnal":
        kappa = diurnal_kappa(spec.peak_to_mean)
        peak_s = float(spec.peak_hour) * HOUR_S
        g = _diurnal_day_integral(kappa, peak_s)
        i = np.minimum(np.floor(s).astype(np.int64), int(DAY_S) - 1)
        frac = s - i
        within = g[i]
        part = frac > 0
        if part.any():
            a = i[part].astype(np.float64)
            b = s[part]
            fa = _diurnal_shape(a, kappa, peak_s)
            fm = _diurnal_shape(0.5 * (a + b), kappa, peak_s)
            fb = _diurnal_shape(b, kappa, peak_s)
            within = within.copy()
            within[part] += (b - a) / 6.0 * (fa + 4.0 * fm + fb)
    else:
        assert spec.multipliers is not None  # the spec checks this for kind 'hourly'
        m, g = _hourly_day_integral(spec.multipliers)
        h = np.minimum(np.floor(s / HOUR_S).astype(np.int64), 23)
        within = g[h] + m[h] * (s - h * HOUR_S)

    cum = float(spec.mean_rps) * (before[day_i] + w[day_i] * within)
    inc = np.diff(cum)
    # a step inside a zero-multiplier hour or a zero-factor day is 0; clear what is only rounding noise
    inc[inc <= 1e-13 * np.abs(cum[1:])] = 0.0
    return RateCurve(inc / step_s, step_s)
