r"""The rate side of `capsim fit`: hour-of-week profile, bursts at fixed clock times, over-dispersion.

Times are local wall-clock seconds (workloads.log_reader). The log is observed over [t0, t1) with t0 the
first request and t1 the last plus one mean gap. Every hour of the week s (Monday 00:00 = 0) has a count
N_s and an exposure E_s (hours of the log that fall in that hour of the week).

Bursts: for each day type (weekdays, weekends) and minute of day, the counts summed over the days seen are
compared with a running median over +-30 minutes (the smooth curve). Runs of minutes whose excess is more
than `BURST_Z` standard deviations (Poisson, inflated by the dispersion) and that stand above the smooth
curve on at least half of the days seen become a burst: its mean count per day over the smooth level,
its window, and the day type(s). Burst requests are taken out of N_s before the profile is fitted.

Profile (168 multipliers): the rate of slot s is shrunk towards a prior rate p_s (the pooled hour-of-day
rate of its day type, scaled by its weekday's level where that weekday was seen) with `PRIOR_COUNTS`
pseudo-requests:  r_s = (N_s + k) / (E_s + k / p_s).  A slot never seen takes p_s; an hour of day never
seen takes the mean rate of its day type; a day type never seen takes the other's profile (noted). With
thousands of requests per slot the shrinkage is negligible; with a handful it smooths.

Over-dispersion: per-minute counts n_m against their fitted means mu_m (curve, outside burst windows).
Under the model of workloads.overdispersion, Var n_m = mu_m (1 + (D - 1) mu_m / mu_bar), so

    D - 1 = (sum (n_m - mu_m)^2 * M / (M - K) - sum mu_m) / (sum mu_m^2 / mu_bar),

with M minutes and K slots fitted from them (each fitted rate takes one degree of freedom). It is kept when
Pearson's X^2 exceeds its degrees of freedom by more than 4 standard deviations. The correlation time comes
from the lag-1 and lag-2 autocovariances of the residuals (phi = c2 / c1, correlation_s = -60 / ln phi).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.core.calendar import DAY_S, HOUR_S, WEEKDAYS

WEEK_H = 168
MINUTES_PER_DAY = 1440
PRIOR_COUNTS = 10.0
BURST_Z = 6.0
BURST_MIN_EXCESS = 10.0  # requests per occurrence
SMOOTH_HALF_MIN = 30


@dataclass
class FittedBurst:
    at_h: float
    half_width_s: float
    count: float  # mean requests per occurrence above the smooth curve
    days: str  # weekdays | weekends | all
    occurrences: int
    z: float
    class_name: str | None = None
    excess_by_slot: dict[int, float] = field(default_factory=dict)  # hour of week -> requests over the curve
    occurrences_by_slot: dict[int, int] = field(default_factory=dict)  # hour of week -> days seen


@dataclass
class RateFit:
    mean_rps: float  # the week's mean rate of the smooth curve (bursts excluded)
    multipliers: np.ndarray  # 168, mean 1, local time, Monday 00:00 first
    counts: np.ndarray  # 168 observed (bursts removed)
    exposure_h: np.ndarray  # 168
    prior_rate: np.ndarray  # 168, requests per hour
    t0: float
    t1: float
    start_weekday: str
    has_calendar: bool
    bursts: list[FittedBurst] = field(default_factory=list)
    index_of_dispersion: float = 1.0  # at the mean rate, 60 s windows
    dispersion_x2: float = 0.0
    dispersion_df: int = 0
    correlation_s: float = 300.0
    overdispersed: bool = False
    notes: list[str] = field(default_factory=list)
    minute_counts: np.ndarray | None = None  # per minute of [floor(t0/60), ...)
    minute_means: np.ndarray | None = None
    minute_in_burst: np.ndarray | None = None

    @property
    def observed_weekdays(self) -> list[int]:
        return [d for d in range(7) if self.exposure_h[d * 24 : (d + 1) * 24].sum() > 0]

    def hourly_rate(self) -> np.ndarray:
        """Requests per hour of each hour of the week (smooth curve)."""
        return self.multipliers * self.mean_rps * HOUR_S

    def day_factors(self) -> np.ndarray:
        """Each weekday's mean rate over the week's mean (7 values)."""
        return self.multipliers.reshape(7, 24).mean(axis=1)

    def weekend_factor(self) -> float:
        f = self.day_factors()
        return float(f[5:].mean() / f[:5].mean()) if f[:5].mean() > 0 else 1.0

    def diurnal_summary(self) -> tuple[float, float]:
        """(peak hour, peak-to-mean) of the mean weekday (hour of day, local)."""
        day = self.multipliers.reshape(7, 24)[:5].mean(axis=0)
        h = int(np.argmax(day))
        return float(h), float(day[h] / day.mean()) if day.mean() > 0 else 1.0


def weekday_of(local_s: float | np.ndarray) -> np.ndarray:
    """Monday = 0 (1970-01-01 was a Thursday)."""
    return ((np.floor(np.asarray(local_s) / DAY_S).astype(np.int64) + 3) % 7).astype(np.int64)


def hour_of_week(local_s: np.ndarray) -> np.ndarray:
    hours = np.floor(np.asarray(local_s, dtype=np.float64) / HOUR_S).astype(np.int64)
    return (hours + 72) % WEEK_H


def _burst_on(days: str, weekday: int | np.ndarray) -> bool | np.ndarray:
    wd = np.asarray(weekday)
    if days == "weekdays":
        return wd < 5
    if days == "weekends":
        return wd >= 5
    return np.ones_like(wd, dtype=bool)


def observed_window(t: np.ndarray) -> tuple[float, float]:
    """[first request, last request + one mean gap)."""
    n = t.size
    gap = (t[-1] - t[0]) / (n - 1) if n > 1 else 60.0
    return float(t[0]), float(t[-1] + max(gap, 1e-3))


def slot_exposure(t0: float, t1: float) -> np.ndarray:
    """Hours of [t0, t1) that fall in each of the 168 hours of the week."""
    exp_h = np.zeros(WEEK_H)
    h0, h1 = math.floor(t0 / HOUR_S), math.ceil(t1 / HOUR_S)
    starts = np.arange(h0, h1, dtype=np.float64) * HOUR_S
    overlap = (np.minimum(starts + HOUR_S, t1) - np.maximum(starts, t0)) / HOUR_S
    np.add.at(exp_h, hour_of_week(starts), np.clip(overlap, 0.0, 1.0))
    return exp_h


def _prior(counts: np.ndarray, exposure: np.ndarray, notes: list[str]) -> np.ndarray:
    """Requests per hour expected in each slot from pooled data (see the module doc)."""
    c = counts.reshape(7, 24)
    e = exposure.reshape(7, 24)
    types = {"weekday": slice(0, 5), "weekend": slice(5, 7)}
    profile: dict[str, np.ndarray | None] = {}
    level: dict[str, float | None] = {}
    for name, sl in types.items():
        ce, ee = c[sl].sum(axis=0), e[sl].sum(axis=0)
        if ee.sum() <= 0:
            profile[name], level[name] = None, None
            continue
        mean = ce.sum() / ee.sum()
        prof = np.where(ee > 0, ce / np.maximum(ee, 1e-12), mean)
        profile[name], level[name] = prof, mean
    if profile["weekday"] is None and profile["weekend"] is None:
        raise ValueError("no exposure")
    for name, other in (("weekday", "weekend"), ("weekend", "weekday")):
        if profile[name] is None:
            profile[name] = profile[other]
            level[name] = level[other]
            notes.append(f"the log has no {name}s: they take the {other}s' profile and level (a guess)")
    prior = np.empty((7, 24))
    for d in range(7):
        name = "weekday" if d < 5 else "weekend"
        prof = profile[name]
        assert prof is not None
        lv = level[name] or 0.0
        day_e = e[d].sum()
        # a weekday seen in the log keeps its own level
        factor = (c[d].sum() / day_e) / lv if day_e >= 1.0 and lv > 0 else 1.0
        prior[d] = prof * factor
    return prior.ravel()


def _shrink(counts: np.ndarray, exposure: np.ndarray, prior: np.ndarray) -> np.ndarray:
    p = np.maximum(prior, 1e-9)
    return (counts + PRIOR_COUNTS) / (exposure + PRIOR_COUNTS / p)


def _minute_grid(t: np.ndarray, t0: float, t1: float) -> tuple[np.ndarray, float, np.ndarray]:
    """(counts per whole minute inside [t0, t1), start of the first minute, minute starts)."""
    m0 = math.ceil(t0 / 60.0) * 60.0
    m1 = math.floor(t1 / 60.0) * 60.0
    if m1 <= m0:
        return np.zeros(0), m0, np.zeros(0)
    nmin = int(round((m1 - m0) / 60.0))
    idx = np.floor((t - m0) / 60.0).astype(np.int64)
    idx = idx[(idx >= 0) & (idx < nmin)]
    counts = np.bincount(idx, minlength=nmin).astype(np.float64)
    return counts, m0, m0 + 60.0 * np.arange(nmin)


def _running_median(x: np.ndarray, half: int) -> np.ndarray:
    """Circular running median over 2 half + 1 points (minutes of a day)."""
    n = x.size
    idx = (np.arange(n)[:, None] + np.arange(-half, half + 1)[None, :]) % n
    return np.median(x[idx], axis=1)


def detect_bursts(
    t: np.ndarray, t0: float, t1: float, has_calendar: bool, dispersion: float = 1.0
) -> list[FittedBurst]:
    """Bursts at fixed clock times (see the module doc)."""
    counts, m0, starts = _minute_grid(t, t0, t1)
    if counts.size < 2 * SMOOTH_HALF_MIN + 2:
        return []
    mod = (np.floor(starts / 60.0).astype(np.int64)) % MINUTES_PER_DAY
    day = np.floor(starts / DAY_S).astype(np.int64)
    wd = weekday_of(starts)
    groups = {"weekdays": wd < 5, "weekends": wd >= 5} if has_calendar else {"all": np.ones(wd.size, dtype=bool)}
    found: list[FittedBurst] = []
    for days_name, sel in groups.items():
        if not sel.any():
            continue
        obs = np.bincount(mod[sel], weights=counts[sel], minlength=MINUTES_PER_DAY)
        ndays = np.bincount(mod[sel], minlength=MINUTES_PER_DAY).astype(np.float64)
        seen = ndays > 0
        per_day = np.where(seen, obs / np.maximum(ndays, 1.0), np.nan)
        filled = np.where(seen, per_day, np.nanmedian(per_day))
        ref = _running_median(filled, SMOOTH_HALF_MIN)
        expect = ref * ndays
        sd = np.sqrt(np.maximum(expect, 1.0) * max(dispersion, 1.0))
        z = np.where(seen, (obs - expect) / sd, 0.0)
        flagged = (z > BURST_Z) & (obs - expect > BURST_MIN_EXCESS * np.maximum(ndays, 1.0) * 0.5)
        for lo, hi in _runs(flagged):
            minutes = np.arange(lo, hi)
            # per-day excess over the smooth level in this window
            mask_rows = sel & (mod >= lo) & (mod < hi)
            if not mask_rows.any():
                continue
            days_here = np.unique(day[mask_rows])
            excess = np.array(
                [counts[mask_rows & (day == d)].sum() - ref[minutes].sum() for d in days_here], dtype=np.float64
            )
            if excess.size == 0 or np.mean(excess > 0) < 0.5:
                continue
            mean_excess = float(excess.mean())
            if mean_excess < BURST_MIN_EXCESS:
                continue
            zz = float((obs[lo:hi].sum() - expect[lo:hi].sum()) / math.sqrt(max(expect[lo:hi].sum(), 1.0) * dispersion))
            centre_slot = [int(hour_of_week(np.array([d * DAY_S + (lo + hi) * 30.0]))[0]) for d in days_here]
            by_slot: dict[int, float] = {}
            occ: dict[int, int] = {}
            for slot, e in zip(centre_slot, excess, strict=True):
                by_slot[slot] = by_slot.get(slot, 0.0) + float(e)
                occ[slot] = occ.get(slot, 0) + 1
            found.append(
                FittedBurst(
                    at_h=float((lo + hi) / 2.0 / 60.0) % 24.0,
                    half_width_s=float((hi - lo) * 30.0),
                    count=mean_excess,
                    days=days_name,
                    occurrences=int(days_here.size),
                    z=zz,
                    excess_by_slot=by_slot,
                    occurrences_by_slot=occ,
                )
            )
    # the same clock window on weekdays and weekends is one burst on all days
    merged: list[FittedBurst] = []
    for b in found:
        twin = next((m for m in merged if abs(m.at_h - b.at_h) < 1e-9 and m.half_width_s == b.half_width_s), None)
        if twin is not None and {twin.days, b.days} == {"weekdays", "weekends"}:
            n = twin.occurrences + b.occurrences
            twin.count = (twin.count * twin.occurrences + b.count * b.occurrences) / n
            twin.occurrences, twin.days, twin.z = n, "all", math.hypot(twin.z, b.z)
            for slot, e in b.excess_by_slot.items():
                twin.excess_by_slot[slot] = twin.excess_by_slot.get(slot, 0.0) + e
                twin.occurrences_by_slot[slot] = twin.occurrences_by_slot.get(slot, 0) + b.occurrences_by_slot[slot]
        else:
            merged.append(b)
    return merged


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[lo, hi) of runs of True, joining runs one False apart."""
    idx = np.flatnonzero(flags)
    if idx.size == 0:
        return []
    runs: list[list[int]] = [[int(idx[0]), int(idx[0]) + 1]]
    for i in idx[1:]:
        if i <= runs[-1][1] + 1:
            runs[-1][1] = int(i) + 1
        else:
            runs.append([int(i), int(i) + 1])
    return [(a, b) for a, b in runs]


def _dispersion(fit: RateFit, t: np.ndarray) -> None:
    counts, m0, starts = _minute_grid(t, fit.t0, fit.t1)
    if counts.size < 30:
        fit.notes.append("under 30 whole minutes of data: no over-dispersion estimate")
        return
    mu = fit.hourly_rate()[hour_of_week(starts)] / 60.0
    # minutes inside a burst window carry no smooth-curve information
    mask = np.ones(counts.size, dtype=bool)
    if fit.bursts:
        mod = (np.floor(starts / 60.0).astype(np.int64)) % MINUTES_PER_DAY
        wd = weekday_of(starts)
        for b in fit.bursts:
            lo = (b.at_h * 60.0 - b.half_width_s / 60.0) % MINUTES_PER_DAY
            hi = lo + 2.0 * b.half_width_s / 60.0
            inside = ((mod >= lo) & (mod < hi)) | ((mod + MINUTES_PER_DAY >= lo) & (mod + MINUTES_PER_DAY < hi))
            mask &= ~(inside & np.asarray(_burst_on(b.days, wd)))
    ok = mask & (mu > 0)
    n, m = counts[ok], mu[ok]
    fit.minute_counts, fit.minute_means = counts, mu
    fit.minute_in_burst = ~mask
    big_m = int(n.size)
    k = int(np.count_nonzero(np.bincount(hour_of_week(starts[ok]), minlength=WEEK_H)))
    if big_m - k < 10:
        return
    correction = big_m / (big_m - k)
    x2 = float(np.sum((n - m) ** 2 / m)) * correction
    df = big_m
    fit.dispersion_x2, fit.dispersion_df = x2, df
    mean_mu = float(m.mean())
    excess = (float(np.sum((n - m) ** 2)) * correction - float(m.sum())) / (float(np.sum(m * m)) / mean_mu)
    d = 1.0 + max(excess, 0.0)
    fit.index_of_dispersion = d
    fit.overdispersed = x2 > df + 4.0 * math.sqrt(2.0 * df) and d > 1.02
    if fit.overdispersed:
        r = (n - m) / np.sqrt(m)
        c1 = float(np.mean(r[1:] * r[:-1])) if r.size > 2 else 0.0
        c2 = float(np.mean(r[2:] * r[:-2])) if r.size > 3 else 0.0
        if c1 > 0 and 0 < c2 < c1:
            fit.correlation_s = float(np.clip(-60.0 / math.log(c2 / c1), 60.0, 6 * HOUR_S))
        elif c1 > 0:
            fit.correlation_s = 60.0
        else:
            fit.notes.append("residuals uncorrelated from minute to minute: correlation_s left at 300 s")


def fit_rates(t_local: np.ndarray, has_calendar: bool) -> RateFit:
    """Fit the rate side to sorted local times (see the module doc)."""
    t = np.asarray(t_local, dtype=np.float64)
    if t.size < 2 or not t[-1] > t[0]:
        raise ValueError("the log spans no time: at least two requests at different times are needed")
    if not has_calendar:
        t = t - t[0] + 4 * DAY_S  # relative times: the log starts at Monday 00:00 (day 4 of 1970)
    t0, t1 = observed_window(t)
    fit = _fit_with(t, t0, t1, has_calendar, detect_bursts(t, t0, t1, has_calendar))
    if fit.overdispersed and fit.bursts:
        # a burst must stand out from the noise too: detect again with the dispersion known
        again = detect_bursts(t, t0, t1, has_calendar, fit.index_of_dispersion)
        if len(again) != len(fit.bursts):
            dropped = len(fit.bursts) - len(again)
            fit = _fit_with(t, t0, t1, has_calendar, again)
            fit.notes.append(f"{dropped} candidate burst(s) lie within the over-dispersed noise (left in the curve)")
    return fit


def _fit_with(t: np.ndarray, t0: float, t1: float, has_calendar: bool, bursts: list[FittedBurst]) -> RateFit:
    exposure = slot_exposure(t0, t1)
    counts = np.bincount(hour_of_week(t), minlength=WEEK_H).astype(np.float64)
    for b in bursts:  # the requests over the smooth curve belong to the burst
        for slot, e in b.excess_by_slot.items():
            counts[slot] = max(counts[slot] - e, 0.0)
    notes: list[str] = []
    prior = _prior(counts, exposure, notes)
    rate_h = _shrink(counts, exposure, prior)
    if rate_h.sum() <= 0:
        raise ValueError("the fitted rate is 0 everywhere")
    mean_rph = float(rate_h.mean())
    fit = RateFit(
        mean_rps=mean_rph / HOUR_S,
        multipliers=rate_h / mean_rph,
        counts=counts,
        exposure_h=exposure,
        prior_rate=prior,
        t0=t0,
        t1=t1,
        start_weekday=WEEKDAYS[int(weekday_of(t[0]))] if has_calendar else "mon",
        has_calendar=has_calendar,
        bursts=bursts,
        notes=notes,
    )
    _dispersion(fit, t)
    return fit
