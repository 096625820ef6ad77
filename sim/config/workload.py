"""`workload:` arrivals (the rate curve over time) and request classes (sizes, SLOs, priorities)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from sim.config.base import Frozen
from sim.config.distributions import DistSpec, ExponentialSpec, GeometricSpec, LognormalSpec, absolute_if_beside_config
from sim.core.calendar import DAY_S

if TYPE_CHECKING:
    import numpy as np  # imported where used: `capsim validate` needs no numpy (tests/test_startup_imports.py)

MAX_MULTIPLIER = 1.0e6  # hourly multipliers are relative weights; 24 x 1e308 would sum to inf

ArrivalKind = Literal["constant", "diurnal", "hourly", "trace", "profile"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class TimeZoneShare(Frozen):
    """One population of users living at `utc_offset_h`, sending `share` of the requests."""

    share: Annotated[float, Field(gt=0, le=1)]
    utc_offset_h: Annotated[float, Field(ge=-12, le=14)]


class BurstSpec(Frozen):
    """Requests submitted together at a time of day (the 9 a.m. enterprise batch), on top of the curve:
    `count` requests (exactly, or Poisson with that mean when `poisson`), or a Poisson number at `rate_rps`
    over the window, spread over [at_h - half_width_s, at_h + half_width_s) of the clock, on `days`."""

    name: str = Field(default="burst", min_length=1, max_length=64)
    at_h: Annotated[float, Field(ge=0, lt=24)] = 9.0
    half_width_s: Annotated[float, Field(gt=0, le=43200)] = 300.0
    count: Annotated[int, Field(ge=0, le=100_000_000)] | None = None
    rate_rps: Annotated[float, Field(gt=0, le=1.0e6)] | None = None
    poisson: bool = False
    shape: Literal["uniform", "normal"] = "uniform"  # normal: sd = half_width_s / 2, truncated to the window
    class_name: str | None = None  # None: classes by share, like the rest of the traffic
    days: Literal["all", "weekdays", "weekends"] | list[Weekday] = "weekdays"

    @model_validator(mode="after")
    def _count_or_rate(self) -> BurstSpec:
        if (self.count is None) == (self.rate_rps is None):
            raise ValueError("a burst needs exactly one of count or rate_rps")
        if self.poisson and self.count is None:
            raise ValueError("poisson applies to count (a rate_rps burst is always Poisson)")
        return self


class OverdispersionSpec(Frozen):
    """A doubly stochastic rate: the curve times a log-normal AR(1) noise (mean 1, coefficient of variation
    `cv`, correlation time `correlation_s`). Give `cv`, or the `index_of_dispersion` wanted for counts in
    windows of `window_s` at the mean rate, from which cv is solved."""

    cv: Annotated[float, Field(gt=0, le=10)] | None = None
    index_of_dispersion: Annotated[float, Field(gt=1, le=1.0e6)] | None = None
    window_s: Annotated[float, Field(gt=0, le=86400)] = 60.0
    correlation_s: Annotated[float, Field(gt=0, le=7 * 86400)] = 300.0

    @model_validator(mode="after")
    def _one_of(self) -> OverdispersionSpec:
        if (self.cv is None) == (self.index_of_dispersion is None):
            raise ValueError("overdispersion needs exactly one of cv or index_of_dispersion")
        return self


class ArrivalsSpec(Frozen):
    """The arrival process. One model for every kind so `--set workload.arrivals.kind=...` stays easy;
    keys that do not apply to the chosen kind are ignored, keys it needs are checked."""

    kind: ArrivalKind = "diurnal"
    mean_rps: Annotated[float, Field(ge=0, le=1.0e6)] = 12.0
    # diurnal
    peak_hour: Annotated[float, Field(ge=0, lt=24)] = 9.0
    peak_to_mean: Annotated[float, Field(ge=1, le=50)] = 3.0
    weekend_factor: Annotated[float, Field(ge=0, le=10)] = 0.35
    # hourly: 24 multipliers, normalised so that the day's mean rate is mean_rps
    multipliers: list[Annotated[float, Field(ge=0)]] | None = None
    # trace replay
    file: str | None = None
    format: Literal["auto", "azure", "mooncake"] = "auto"
    time_column: str = "TIMESTAMP"
    input_column: str = "ContextTokens"
    output_column: str = "GeneratedTokens"
    speed: Annotated[float, Field(gt=0, le=1.0e4)] = 1.0
    loop: bool = False
    # --- the working day and week (see docs/workloads.md) ---
    # diurnal: a night floor (the rate never drops below floor * mean) and an afternoon hump
    floor: Annotated[float, Field(ge=0, lt=1)] = 0.0
    hump_hour: Annotated[float, Field(ge=0, lt=24)] | None = None
    hump_size: Annotated[float, Field(gt=0, le=1)] = 0.5  # the hump's weight relative to the main peak
    # weekly: 7 factors (mon..sun) scaling each day's mean; replaces weekend_factor when given
    day_factors: Annotated[list[Annotated[float, Field(ge=0, le=10)]], Field(min_length=7, max_length=7)] | None = None
    # a named hour-of-week profile shipped with capsim (kind profile, or hourly instead of multipliers)
    profile: str | None = None
    # the clock's offset from UTC (profiles are UTC; time zones are placed relative to it)
    utc_offset_h: Annotated[float, Field(ge=-12, le=14)] = 0.0
    # a mixture of populations, each following the day curve in its own local time
    timezones: Annotated[list[TimeZoneShare], Field(min_length=1, max_length=48)] | None = None
    # on top of the curve
    bursts: Annotated[list[BurstSpec], Field(max_length=64)] = Field(default_factory=list)
    overdispersion: OverdispersionSpec | None = None

    @field_validator("file")
    @classmethod
    def _file_beside_config(cls, v: str | None, info: ValidationInfo) -> str | None:
        """A relative file found beside the config file is stored as an absolute path, so the run (and the
        resolved config.yaml in its results folder) finds it from any working directory."""
        return absolute_if_beside_config(v, info)

    @model_validator(mode="after")
    def _kind_needs(self) -> ArrivalsSpec:
        if self.kind == "hourly" and self.profile is None:
            if self.multipliers is None or len(self.multipliers) not in (24, 168):
                got = "none" if self.multipliers is None else f"{len(self.multipliers)}"
                raise ValueError(f"kind 'hourly' needs 24 (or 168 hour-of-week) multipliers or a profile, got {got}")
            if sum(self.multipliers) <= 0:
                raise ValueError("hourly multipliers must not all be 0")
            if max(self.multipliers) > MAX_MULTIPLIER:
                raise ValueError(
                    f"multipliers are relative weights (normalised so the mean rate is mean_rps) and must be <= "
                    f"{MAX_MULTIPLIER:g}, got {max(self.multipliers):.3g}: larger ones overflow the normalisation "
                    "and give a rate of 0"
                )
        if self.kind == "hourly" and self.profile is not None and self.multipliers is not None:
            raise ValueError("give either multipliers or a profile, not both")
        if self.kind == "profile" and self.profile is None:
            raise ValueError("kind 'profile' needs a profile name")
        if self.kind == "trace" and not self.file:
            raise ValueError("kind 'trace' needs a file")
        if self.timezones is not None:
            total = math.fsum(z.share for z in self.timezones)
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"time zone shares must sum to 1, got {total:.6g}")
            if self.uses_week_profile and self.profile is not None:
                raise ValueError("timezones do not apply to a named profile (it is already a real mix of zones)")
        if self.day_factors is not None and self.uses_week_profile:
            raise ValueError("day_factors do not apply to a 168-hour (week) shape, which carries its own days")
        if self.kind == "trace" and (self.bursts or self.overdispersion is not None):
            raise ValueError("bursts and overdispersion apply to rate curves, not to kind 'trace'")
        od = self.overdispersion
        if od is not None and od.index_of_dispersion is not None and self.mean_rps <= 0:
            raise ValueError("overdispersion.index_of_dispersion needs mean_rps > 0")
        return self

    def weekday_factors(self) -> np.ndarray:
        """w for Monday..Sunday of a day shape (all 1 for a week shape or a constant rate)."""
        import numpy as np

        if self.kind == "constant" or self.uses_week_profile:
            return np.ones(7)
        if self.day_factors is not None:
            return np.asarray(self.day_factors, dtype=np.float64)
        return np.array([1.0] * 5 + [float(self.weekend_factor)] * 2)

    @property
    def uses_week_profile(self) -> bool:
        """True when the shape is 168 hour-of-week values (a named profile or 168 multipliers)."""
        if self.kind == "profile" or (self.kind == "hourly" and self.profile is not None):
            return True
        return self.kind == "hourly" and self.multipliers is not None and len(self.multipliers) == 168


class SessionsSpec(Frozen):
    """Users who arrive along the curve and hold multi-turn conversations. Turn 1 carries a prompt from the
    class's input distribution (or `message_tokens`); each later turn arrives `think_time_s` after the
    previous one and carries the whole conversation so far plus a new message."""

    turns: DistSpec = GeometricSpec(dist="geometric", mean=4)
    think_time_s: DistSpec = ExponentialSpec(dist="exponential", mean=60.0)
    message_tokens: DistSpec | None = None  # None: each new message is drawn from the class's input_tokens
    max_context_tokens: Annotated[int, Field(ge=1, le=10_000_000)] = 128_000
    hash_block_tokens: Annotated[int, Field(ge=0, le=1_000_000)] = 512  # 0: no prefix hashes


class RequestClass(Frozen):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    share: Annotated[float, Field(ge=0, le=1)] = 1.0
    input_tokens: DistSpec = LognormalSpec(dist="lognormal", median=600, sigma=0.9)
    output_tokens: DistSpec = LognormalSpec(dist="lognormal", median=220, sigma=0.7)
    slo_ttft_s: Annotated[float, Field(gt=0)] = 2.0
    timeout_s: Annotated[float, Field(gt=0)] | None = None
    priority: Annotated[int, Field(ge=0, le=9)] = 0  # 0 is served first in the GPU queue


def _default_classes() -> list[RequestClass]:
    return [
        RequestClass(
            name="default",
            share=1.0,
            output_tokens=GeometricSpec(dist="geometric", mean=200),
        )
    ]


class UsersSpec(Frozen):
    """Traffic from a user base instead of `mean_rps`: the average day carries monthly_active x
    daily_active_share x interactions_per_active_day requests (one interaction = one request; a session's
    turns each count). The rate is spread over the week by the workload's own weekday factors (see
    docs/workloads.md, "Traffic from users"); bursts come on top."""

    monthly_active: Annotated[float, Field(gt=0, le=1.0e10)]
    daily_active_share: Annotated[float, Field(gt=0, le=1)]
    interactions_per_active_day: Annotated[float, Field(gt=0, le=1.0e6)]

    @property
    def requests_per_day(self) -> float:
        """Requests on the average day of the week: daily active users x interactions per active day."""
        return self.monthly_active * self.daily_active_share * self.interactions_per_active_day


def users_mean_rps(users: UsersSpec, arrivals: ArrivalsSpec) -> float:
    """`mean_rps` whose week averages users.requests_per_day per day under the curve's weekday factors.

    A day shape averages mean_rps x w(d) over day d, so the week's average day is mean_rps x mean(w)
    (w = 1 for a constant rate and for 168-hour week shapes, whose mean_rps is already the week's mean)."""
    mean_w = float(arrivals.weekday_factors().mean())
    if mean_w <= 0:
        raise ValueError("users: the weekday factors are all 0, so no day carries traffic")
    return users.requests_per_day / DAY_S / mean_w


class WorkloadSpec(Frozen):
    arrivals: ArrivalsSpec = ArrivalsSpec()
    # traffic from a user base instead of arrivals.mean_rps (exactly one of the two)
    users: UsersSpec | None = None
    classes: Annotated[list[RequestClass], Field(min_length=1, max_length=64)] = Field(default_factory=_default_classes)
    sessions: SessionsSpec | None = None  # multi-turn conversations instead of independent requests
    # growth (workloads.growth): the whole rate (curve and bursts) times scale * (1 + growth_per_month)^(t / 730 h)
    scale: Annotated[float, Field(gt=0, le=1.0e6)] = 1.0
    growth_per_month: Annotated[float, Field(gt=-1, le=100)] = 0.0

    @model_validator(mode="after")
    def _classes_ok(self) -> WorkloadSpec:
        names = [c.name for c in self.classes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"class names must be unique, repeated: {', '.join(dupes)}")
        total = math.fsum(c.share for c in self.classes)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"class shares must sum to 1, got {total:.6g}")
        for b in self.arrivals.bursts:
            if b.class_name is not None and b.class_name not in names:
                raise ValueError(f"burst {b.name!r} names unknown class {b.class_name!r}; classes: {', '.join(names)}")
        if self.sessions is not None and self.arrivals.kind == "trace":
            raise ValueError("sessions make their own arrival times: they do not apply to kind 'trace'")
        if self.users is not None:
            self._rate_from_users(self.users)
        if self.arrivals.kind == "trace" and (self.scale != 1.0 or self.growth_per_month != 0.0):
            raise ValueError("scale and growth_per_month apply to rate curves; a trace is faster with arrivals.speed")
        return self

    def _rate_from_users(self, users: UsersSpec) -> None:
        """Set arrivals.mean_rps from `users`. A mean_rps given beside users must be the one they imply
        (a resolved config carries both); any other is a conflict: give exactly one of the two."""
        if self.arrivals.kind == "trace":
            raise ValueError("users apply to rate curves, not to kind 'trace' (a trace brings its own times)")
        rate = users_mean_rps(users, self.arrivals)
        if rate > 1.0e6:
            raise ValueError(f"users imply mean_rps {rate:.6g} > 1e6")
        if "mean_rps" in self.arrivals.model_fields_set:
            given = self.arrivals.mean_rps
            if not math.isclose(given, rate, rel_tol=1e-9, abs_tol=0.0):
                raise ValueError(
                    f"give exactly one of workload.users and workload.arrivals.mean_rps: mean_rps is {given:.6g} "
                    f"but the users imply {rate:.6g}"
                )
        if self.arrivals.overdispersion is not None and self.arrivals.overdispersion.index_of_dispersion is not None:
            ArrivalsSpec.model_validate({**self.arrivals.model_dump(), "mean_rps": rate})  # re-solve cv at this rate
        arrivals = self.arrivals.model_copy(update={"mean_rps": rate})
        object.__setattr__(self, "arrivals", arrivals)
