r"""The working day and week: rate curves with a night floor, an afternoon hump, weekday factors,
hour-of-week profiles and time-zone mixtures (see docs/workloads.md).

Every curve here is mean_rps times a periodic shape. A *period shape* has period P (a day, or a week for
168-hour shapes) and a cumulative G(s) = \int_0^s f, s in [0, P], with G(P) = P (f has mean 1 over the
period). Day shapes are scaled per local weekday by w(d) (`day_factors`, else `weekend_factor` on
Saturdays and Sundays, 1 otherwise); week shapes carry their own days (w = 1). The cumulative in local
time L (seconds since a Monday 00:00) is

    C(L) = mean_rps * ( sum_{j < k} w(j) P + w(k) G(L - k P) ),   k = floor(L / P),

and the clock's cumulative is Lambda(t) = sum_i share_i (C(L0 + t + delta_i) - C(L0 + delta_i)), with L0
the clock's start (00:00 of start_weekday) and delta_i each population's shift (workloads.timezones).
Each difference is summed from the population's own first day (`_population_cumulative`), so with one
unshifted population the day's cumulative is added to whole days only. The rate curve's steps are
differences of Lambda on the step grid: exact averages of the continuous rate. A constant rate is the
same in every time zone and on every day: its steps are mean_rps itself.

Day shapes:

* ``diurnal`` (with `floor` or `hump_hour`)::

      f(h) = floor + (1 - floor) * (v(h; c) + A v(h; hump_hour)) / (1 + A)
      v(h; c) = exp(kappa cos(2 pi (h - c) / 24)) / I0(kappa)        (mean 1 over the day)

  with A = hump_size (0 without a hump). The main centre c and kappa >= 0 solve: f has its maximum at
  peak_hour (f'(peak_hour) = 0, c moved slightly away from the hump) and max f = peak_to_mean. Without a
  hump c = peak_hour and exp(kappa)/I0(kappa) = (peak_to_mean - floor)/(1 - floor). The rate never falls
  below floor * mean.
  Without floor and hump, f(h) = exp(kappa cos(2 pi (h - peak_hour) / 24)) / I0(kappa) with
  exp(kappa)/I0(kappa) = peak_to_mean (`diurnal_kappa`). The daily integral of each component is
  computed once per (kappa, centre) at 1 s resolution with Simpson's rule (periodic integrand: errors
  ~1e-13), and within a second with a 3-point Simpson rule.
* ``hourly``: 24 multipliers (normalised to mean 1) piecewise constant per hour; or 168 multipliers
  (Monday 00:00 first, normalised over the week), a week shape.
* ``profile`` (or ``hourly`` with `profile`): a named 168-hour UTC profile (workloads.named_profiles).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from sim.config.workload import ArrivalsSpec
from sim.core.calendar import DAY_S, HOUR_S, WEEK_S, WEEKDAYS
from workloads.arrivals import RateCurve
from workloads.named_profiles import hour_of_week_multipliers
from workloads.timezones import populations


@dataclass(frozen=True)
class PeriodShape:
    period_s: float
    cumulative: Callable[[np.ndarray], np.ndarray]  # G(s) for s in [0, period_s], G(period_s) = period_s
    rate: Callable[[np.ndarray], np.ndarray]  # f(s), for plots and checks


# ------------------------------------------------------------------------------------- diurnal


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


def _vm(s: np.ndarray, kappa: float, center_s: float) -> np.ndarray:
    """v at seconds of day s: exp(kappa (cos(2 pi (s - c)/86400) - 1)) / i0e(kappa), mean 1 over a day."""
    theta = (2.0 * np.pi / DAY_S) * (np.asarray(s, dtype=np.float64) - center_s)
    return np.exp(kappa * (np.cos(theta) - 1.0)) / special.i0e(kappa)


@functools.lru_cache(maxsize=32)
def _vm_table(kappa: float, center_s: float) -> np.ndarray:
    """Integral of v over [0, i] seconds, i = 0..86400 (Simpson per second), scaled to end at 86400."""
    half = _vm(np.arange(2 * int(DAY_S) + 1) * 0.5, kappa, center_s)
    per_second = (half[0:-1:2] + 4.0 * half[1::2] + half[2::2]) / 6.0
    g = np.empty(int(DAY_S) + 1)
    g[0] = 0.0
    np.cumsum(per_second, out=g[1:])
    g *= DAY_S / g[-1]
    g.setflags(write=False)
    return g


def _vm_cumulative(s: np.ndarray, kappa: float, center_s: float) -> np.ndarray:
    g = _vm_table(kappa, center_s)
    s = np.asarray(s, dtype=np.float64)
    i = np.minimum(np.floor(s).astype(np.int64), int(DAY_S) - 1)
    out = g[i].copy()
    frac = s - i
    part = frac > 0
    if part.any():
        a = i[part].astype(np.float64)
        b = s[part]
        out[part] += (
            (b - a)
            / 6.0
            * (_vm(a, kappa, center_s) + 4.0 * _vm(0.5 * (a + b), kappa, center_s) + _vm(b, kappa, center_s))
        )
    return out


def _day_max(f: Callable[[np.ndarray], np.ndarray]) -> float:
    """The max of a smooth day shape: a 1-minute grid, then a bounded refinement around the best point."""
    grid = np.arange(0.0, DAY_S, 60.0)
    k = int(np.argmax(f(grid)))
    from scipy import optimize  # lazy: keeps scipy.optimize off start-up

    res = optimize.minimize_scalar(
        lambda x: -float(f(np.array([x % DAY_S]))[0]),
        bounds=(grid[k] - 60.0, grid[k] + 60.0),
        method="bounded",
        options={"xatol": 1e-3},
    )
    return max(float(-res.fun), float(f(grid[k : k + 1])[0]))


def _main_offset(kappa: float, peak_s: float, hump_s: float, a: float) -> float:
    """d (seconds) such that with the main component centred at peak_s - d the slope of
    v(.; peak_s - d) + a v(.; hump_s) vanishes at peak_s (the one nearest 0)."""
    w = 2.0 * np.pi / DAY_S
    hump_slope = -a * np.sin(w * (peak_s - hump_s)) * float(_vm(np.array([peak_s]), kappa, hump_s)[0])

    def slope(d: float) -> float:
        return -np.sin(w * d) * float(_vm(np.array([peak_s]), kappa, peak_s - d)[0]) + hump_slope

    if hump_slope == 0.0:
        return 0.0
    direction = 1.0 if hump_slope > 0 else -1.0  # the main centre moves away from the hump
    grid = direction * np.linspace(0.0, DAY_S / 4.0, 721)
    vals = np.array([slope(d) for d in grid])
    sign = np.sign(vals)
    cross = np.flatnonzero(sign[:-1] * sign[1:] <= 0)
    if cross.size == 0:
        raise ValueError("the afternoon hump is too large or too close to keep the peak at peak_hour")
    i = int(cross[0])
    lo, hi = sorted((grid[i], grid[i + 1]))
    from scipy import optimize  # lazy: keeps scipy.optimize off start-up

    return float(optimize.brentq(slope, lo, hi, xtol=1e-9))


@functools.lru_cache(maxsize=32)
def diurnal_parameters(
    peak_to_mean: float, floor: float, peak_s: float, hump_s: float | None, hump_size: float
) -> tuple[float, float]:
    """(kappa, centre of the main component in seconds of day) for the diurnal shape with floor and hump:
    the shape's maximum is peak_to_mean and lies at peak_s. Without a hump the centre is peak_s and
    exp(kappa)/I0(kappa) = (peak_to_mean - floor)/(1 - floor). ValueError if no such shape exists."""
    if peak_to_mean == 1.0:
        return 0.0, peak_s
    if hump_s is None:
        return diurnal_kappa((peak_to_mean - floor) / (1.0 - floor)), peak_s
    a = hump_size

    def shape(kappa: float) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
        centre = peak_s - _main_offset(kappa, peak_s, hump_s, a)

        def f(s: np.ndarray) -> np.ndarray:
            return floor + (1.0 - floor) * (_vm(s, kappa, centre) + a * _vm(s, kappa, hump_s)) / (1.0 + a)

        return f, centre

    def excess(kappa: float) -> float:
        f, _ = shape(kappa)
        return float(f(np.array([peak_s]))[0]) - peak_to_mean

    hi = 1.0
    while excess(hi) < 0:
        hi *= 2.0
        if hi > 1.0e4:
            raise ValueError(f"no diurnal shape with this hump reaches peak_to_mean={peak_to_mean}")
    from scipy import optimize  # lazy: keeps scipy.optimize off start-up

    kappa = float(optimize.brentq(excess, 1e-9, hi, xtol=1e-12, rtol=1e-12, maxiter=200))
    f, centre = shape(kappa)
    if _day_max(f) > peak_to_mean * (1.0 + 1e-6):
        raise ValueError("the afternoon hump would be higher than the peak: lower hump_size")
    return kappa, centre


def _diurnal_shape(spec: ArrivalsSpec) -> PeriodShape:
    floor = float(spec.floor)
    peak_s = float(spec.peak_hour) * HOUR_S
    hump_s = None if spec.hump_hour is None else float(spec.hump_hour) * HOUR_S
    a = float(spec.hump_size) if hump_s is not None else 0.0
    kappa, centre = diurnal_parameters(float(spec.peak_to_mean), floor, peak_s, hump_s, a)

    def rate(s: np.ndarray) -> np.ndarray:
        v = _vm(s, kappa, centre)
        if hump_s is not None:
            v = v + a * _vm(s, kappa, hump_s)
        return floor + (1.0 - floor) * v / (1.0 + a)

    def cumulative(s: np.ndarray) -> np.ndarray:
        g = _vm_cumulative(s, kappa, centre)
        if hump_s is not None:
            g = g + a * _vm_cumulative(s, kappa, hump_s)
        return floor * np.asarray(s, dtype=np.float64) + (1.0 - floor) * g / (1.0 + a)

    return PeriodShape(DAY_S, cumulative, rate)


# --------------------------------------------------------------------------------- piecewise hourly


def _piecewise_hourly(values: np.ndarray) -> PeriodShape:
    m = np.asarray(values, dtype=np.float64)
    m = m / m.mean()
    period = m.size * HOUR_S
    g = np.concatenate([[0.0], np.cumsum(m) * HOUR_S])
    g[-1] = period

    def cumulative(s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        h = np.clip(np.floor(s / HOUR_S).astype(np.int64), 0, m.size - 1)
        return g[h] + m[h] * (s - h * HOUR_S)

    def rate(s: np.ndarray) -> np.ndarray:
        h = np.clip(np.floor(np.asarray(s, dtype=np.float64) / HOUR_S).astype(np.int64), 0, m.size - 1)
        return m[h]

    return PeriodShape(period, cumulative, rate)


def period_shape(spec: ArrivalsSpec) -> PeriodShape:
    """The day (or week) shape of a constant, diurnal, hourly or profile spec."""
    if spec.kind == "constant":
        return _piecewise_hourly(np.ones(24))
    if spec.kind == "diurnal":
        return _diurnal_shape(spec)
    if spec.profile is not None and spec.kind in ("hourly", "profile"):
        return _piecewise_hourly(hour_of_week_multipliers(spec.profile))
    if spec.kind == "hourly" and spec.multipliers is not None:
        return _piecewise_hourly(np.asarray(spec.multipliers, dtype=np.float64))
    raise ValueError(f"arrivals kind {spec.kind!r} has no rate curve")


def _population_cumulative(shape: PeriodShape, w: np.ndarray, l0: float, t: np.ndarray) -> np.ndarray:
    """(C(l0 + t) - C(l0)) / mean_rps for t >= 0, l0 the population's local start (seconds since a Monday
    00:00), summed from the period k0 that holds l0: whole periods' weights, then the current period's."""
    P = shape.period_s
    k0 = math.floor(l0 / P)
    s0 = l0 - k0 * P
    u = np.asarray(t, dtype=np.float64) + s0  # local seconds since the start of period k0
    j = np.floor(u / P)
    s = u - j * P
    j_i = j.astype(np.int64)
    n = int(j_i.max()) + 1 if j_i.size else 1
    weights = np.ones(n) if P == WEEK_S else w[(k0 + np.arange(n)) % 7]  # a week shape carries its own days
    before = np.concatenate([[0.0], np.cumsum(weights)]) * P
    return before[j_i] + weights[j_i] * shape.cumulative(s) - weights[0] * shape.cumulative(np.array([s0]))[0]


def _weekday_index(start_weekday: str) -> int:
    try:
        return WEEKDAYS.index(start_weekday.lower()[:3])
    except ValueError:
        raise ValueError(f"start_weekday must be one of {', '.join(WEEKDAYS)}, got {start_weekday!r}") from None


def clock_cumulative(spec: ArrivalsSpec, start_weekday: str, t: np.ndarray) -> np.ndarray:
    """Lambda(t): expected arrivals in [0, t] of clock time (any t >= 0), for the curve kinds."""
    shape = period_shape(spec)
    w = spec.weekday_factors()
    start = _weekday_index(start_weekday) * DAY_S
    t = np.asarray(t, dtype=np.float64)
    cum = np.zeros_like(t)
    for share, delta in populations(spec):
        cum += share * _population_cumulative(shape, w, start + delta, t)
    return float(spec.mean_rps) * cum


def build_rate_curve(spec: ArrivalsSpec, start_weekday: str, horizon_s: float, step_s: float = 60.0) -> RateCurve:
    """The rate curve of an arrivals spec (any kind but trace) over [0, horizon_s), on
    ceil(horizon_s / step_s) steps of step_s seconds (the last one may reach past the horizon)."""
    if not (math.isfinite(horizon_s) and horizon_s > 0):
        raise ValueError(f"horizon_s must be > 0, got {horizon_s}")
    if not (math.isfinite(step_s) and step_s > 0):
        raise ValueError(f"step_s must be > 0, got {step_s}")
    n = max(1, math.ceil(horizon_s / step_s - 1e-9))
    if spec.kind == "constant":
        _weekday_index(start_weekday)  # an unknown weekday is an error for every kind
        return RateCurve(np.full(n, float(spec.mean_rps)), step_s)
    cum = clock_cumulative(spec, start_weekday, np.arange(n + 1, dtype=np.float64) * step_s)
    inc = np.diff(cum)
    # a step inside a zero-multiplier hour or a zero-factor day is 0: clear what is only rounding noise
    inc[inc <= 1e-13 * np.abs(cum[1:])] = 0.0
    return RateCurve(inc / step_s, step_s)


def clock_rate(spec: ArrivalsSpec, start_weekday: str, t: np.ndarray) -> np.ndarray:
    """The continuous rate lambda(t) at clock times t (for plots and peak checks)."""
    shape = period_shape(spec)
    w = spec.weekday_factors()
    start = WEEK_S + _weekday_index(start_weekday) * DAY_S  # a week ahead keeps L >= 0 for any shift
    t = np.asarray(t, dtype=np.float64)
    out = np.zeros_like(t)
    P = shape.period_s
    for share, delta in populations(spec):
        L = start + delta + t
        k = np.floor(L / P).astype(np.int64)
        factor = 1.0 if P == WEEK_S else w[k % 7]
        out += share * factor * shape.rate(L - k * P)
    return float(spec.mean_rps) * out
