"""Named arrival profiles shipped with capsim (data in workloads/profiles/, attribution in its README.md).

A profile is 168 hour-of-week rate multipliers in UTC, index 0 = Monday 00:00-01:00 UTC, normalised to
mean 1 over the week (so that `mean_rps` is the week's mean rate).

* ``azure-code-week-2024`` (alias ``azure-code-week``; ``_`` may stand for ``-``): the Azure LLM
  inference trace 2024, code service, one week from Friday 2024-05-10 00:00 UTC, hourly means read off
  the dataset's per-minute plot (Stojkovic et al., DynamoLLM, HPCA 2025; CC-BY-4.0). Its real mean is
  28.0 requests/s; weekend days carry about a third of a weekday.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from sim.core.calendar import HOUR_S
from workloads.files import PROFILES_DIR

WEEK_HOURS = 168


@dataclass(frozen=True)
class ProfileSource:
    file: str  # in workloads/profiles/
    time_column: str  # the start of each hour, UTC
    rate_column: str  # requests per second (any unit: only the shape is used)
    description: str


PROFILES: dict[str, ProfileSource] = {
    "azure-code-week-2024": ProfileSource(
        file="azure_llm_2024_code_1week_hourly_digitized.csv",
        time_column="hour_start_utc",
        rate_column="requests_per_s",
        description="Azure LLM inference 2024, code, one week (hourly, UTC); real mean 28.0 req/s",
    ),
}


ALIASES: dict[str, str] = {"azure-code-week": "azure-code-week-2024"}


def normalise_name(name: str) -> str:
    """Lower case, '_' as '-', aliases resolved: 'azure_code_week' -> 'azure-code-week-2024'."""
    key = name.strip().lower().replace("_", "-")
    return ALIASES.get(key, key)


def profile_names() -> tuple[str, ...]:
    return tuple(sorted(PROFILES))


@functools.lru_cache(maxsize=8)
def real_hourly_series(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(hour start times as numpy datetime64[s] UTC, rate values) of a profile, in file order."""
    src = PROFILES[normalise_name(name)]
    import pandas as pd  # lazy: only configs that name a profile pay for pandas

    frame = pd.read_csv(PROFILES_DIR / src.file)
    times = pd.to_datetime(frame[src.time_column]).to_numpy(dtype="datetime64[s]")
    rates = frame[src.rate_column].to_numpy(dtype=np.float64)
    if rates.size != WEEK_HOURS:
        raise ValueError(f"profile {name!r}: expected {WEEK_HOURS} hourly values, got {rates.size}")
    if not (np.isfinite(rates).all() and (rates >= 0).all() and rates.sum() > 0):
        raise ValueError(f"profile {name!r}: rates must be finite, >= 0 and not all 0")
    step = np.diff(times).astype(np.int64)
    if not np.all(step == HOUR_S):
        raise ValueError(f"profile {name!r}: hours must be consecutive")
    times.setflags(write=False)
    rates.setflags(write=False)
    return times, rates


@functools.lru_cache(maxsize=8)
def hour_of_week_multipliers(name: str) -> np.ndarray:
    """168 multipliers (mean 1), index 0 = Monday 00:00 UTC."""
    times, rates = real_hourly_series(name)
    first = times[0].astype("datetime64[h]")
    # 1970-01-01 was a Thursday: Monday-based hour of week of the first row
    hours_since_epoch = int(first.astype(np.int64))
    first_how = (hours_since_epoch + 3 * 24) % WEEK_HOURS
    m = np.roll(rates, first_how)  # value at index h is the rate at hour-of-week h
    m = m / m.mean()
    m.setflags(write=False)
    return m
