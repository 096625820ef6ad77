"""A request log's cells: times (ISO 8601 with or without offsets, epoch or relative numbers) to UTC and local
seconds, numbers and blanks, and the problems counted with their first line numbers (workloads.log_reader)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.core.calendar import HOUR_S

FIRST_LINES = 5  # line numbers kept per kind of problem


_OFFSET_RE = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$", re.IGNORECASE)


class LogError(ValueError):
    """The log cannot be fitted (missing column, unreadable file, nothing usable)."""


@dataclass
class Problems:
    """Counts and first line numbers per kind of problem."""

    counts: dict[str, int] = field(default_factory=dict)
    lines: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, line_numbers: np.ndarray | list[int]) -> None:
        ln = np.asarray(line_numbers, dtype=np.int64)
        if ln.size == 0:
            return
        self.counts[kind] = self.counts.get(kind, 0) + int(ln.size)
        kept = self.lines.setdefault(kind, [])
        kept.extend(int(x) for x in np.sort(ln)[: max(0, FIRST_LINES - len(kept))])
        kept.sort()

    def lines_text(self, kind: str, unit: str = "line") -> str:
        first = self.lines.get(kind, [])
        more = ", ..." if self.counts.get(kind, 0) > len(first) else ""
        return f"{unit}s " + ", ".join(str(x) for x in first) + more if first else ""

    def summary(self, unit: str = "line") -> list[str]:
        return [f"{kind}: {self.counts[kind]} ({self.lines_text(kind, unit)})" for kind in sorted(self.counts)]


def _is_text(series: pd.Series) -> bool:
    """A column of strings only (what the CSV reader gives): vectorised string methods apply."""
    return pd.api.types.is_string_dtype(series) and series.dtype != object


def _blank(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series):
        return series.isna().to_numpy(dtype=bool)
    if _is_text(series):
        return (series.isna() | (series.str.strip() == "")).to_numpy(dtype=bool)
    return series.map(
        lambda x: x is None or (isinstance(x, str) and not x.strip()) or (isinstance(x, float) and math.isnan(x))
    ).to_numpy(dtype=bool)


def _numbers(series: pd.Series) -> np.ndarray:
    """float64 values, NaN where a cell is not a finite number (bools are not numbers)."""
    if pd.api.types.is_bool_dtype(series):
        return np.full(len(series), np.nan)
    if pd.api.types.is_numeric_dtype(series):
        out = series.to_numpy(dtype=np.float64, na_value=np.nan)
    elif _is_text(series):
        out = pd.to_numeric(series.str.strip(), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = series.map(lambda v: v.strip() if isinstance(v, str) else (np.nan if isinstance(v, bool) else v))
        out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    out = out.copy()
    out[~np.isfinite(out)] = np.nan
    return out


def _zone(timezone: str) -> Any:
    """A tzinfo for an IANA name, 'UTC', or a fixed offset such as +05:30 / -4."""
    import datetime as dt
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    tz = timezone.strip()
    m = re.fullmatch(r"(?:UTC)?([+-])(\d{1,2})(?::?(\d\d))?", tz, re.IGNORECASE)
    if m:
        hours = int(m.group(2)) + int(m.group(3) or 0) / 60.0
        if hours > 14:
            raise LogError("--timezone offset must be within +-14 h")
        return dt.timezone(dt.timedelta(hours=hours if m.group(1) == "+" else -hours))
    if tz.upper() in ("UTC", "Z", "GMT"):
        return dt.UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise LogError("--timezone: unknown time zone (give an IANA name such as Europe/Berlin, or +HH:MM)") from None


def _epoch_seconds(v: np.ndarray) -> np.ndarray:
    """Epoch numbers to seconds by magnitude: >= 1e17 ns, >= 1e14 us, >= 1e11 ms, else s."""
    a = np.abs(v)
    scale = np.where(a >= 1e17, 1e-9, np.where(a >= 1e14, 1e-6, np.where(a >= 1e11, 1e-3, 1.0)))
    return v * scale


def _utc_seconds(
    series: pd.Series, tz: Any, problems: Problems, lines: np.ndarray, mooncake: bool
) -> tuple[np.ndarray, bool]:
    """(UTC epoch seconds or relative seconds, has_calendar); NaN where a time cannot be read."""
    n = len(series)
    nums = _numbers(series)
    is_num = np.isfinite(nums)
    out = np.full(n, np.nan)
    has_calendar = True
    if is_num.any():
        if np.nanmax(np.abs(nums)) < 1e8:  # relative times: no calendar
            has_calendar = False
            out[is_num] = nums[is_num] * (1e-3 if mooncake else 1.0)
        else:
            small = is_num & (np.abs(nums) < 1e8)
            problems.add("time is a number too small for an epoch time (row left out)", lines[small])
            ok = is_num & ~small
            out[ok] = _epoch_seconds(nums[ok])
    text_rows = ~is_num
    if text_rows.any():
        sub_series = series[text_rows]
        if _is_text(sub_series):
            raw = sub_series.fillna("").str.strip()
        else:
            raw = sub_series.map(lambda v: v.strip() if isinstance(v, str) else "")
        nonempty = (raw != "").to_numpy(dtype=bool)
        idx = np.flatnonzero(text_rows)
        if not has_calendar and nonempty.any():
            problems.add("time is a date-time in a log of relative times (row left out)", lines[idx[nonempty]])
        elif nonempty.any():
            sub = raw[nonempty]
            with_offset = sub.str.contains(_OFFSET_RE).to_numpy(dtype=bool)
            secs = np.full(len(sub), np.nan)
            if with_offset.any():
                st = pd.to_datetime(sub[with_offset], format="ISO8601", errors="coerce", utc=True)
                secs[with_offset] = _ns_to_s(st)
            if (~with_offset).any():
                st = pd.to_datetime(sub[~with_offset], format="ISO8601", errors="coerce")
                if getattr(st.dt, "tz", None) is None:
                    st = st.dt.tz_localize(tz, ambiguous=np.zeros(len(st), dtype=bool), nonexistent="shift_forward")
                secs[~with_offset] = _ns_to_s(st.dt.tz_convert("UTC"))
            out[idx[nonempty]] = secs
            bad = idx[nonempty][~np.isfinite(secs)]
            problems.add("time is not a date-time or number (row left out)", lines[bad])
        problems.add("time missing (row left out)", lines[idx[~nonempty]])
    if has_calendar:
        valid = np.isfinite(out)
        lo, hi = 631152000.0, 4102444800.0  # 1990-01-01 .. 2100-01-01 UTC
        out_of_range = valid & ((out < lo) | (out >= hi))
        problems.add("time outside 1990-2100 (row left out)", lines[out_of_range])
        out[out_of_range] = np.nan
    return out, has_calendar


def _ns_to_s(stamps: pd.Series) -> np.ndarray:
    ns = stamps.to_numpy(dtype="datetime64[ns]")
    good = ~np.isnat(ns)
    out = np.full(ns.size, np.nan)
    out[good] = ns[good].astype(np.int64).astype(np.float64) * 1e-9
    return out


def _offsets_h(tz: Any, utc_s: np.ndarray) -> tuple[float, tuple[float, ...]]:
    """The zone's offset at the log's middle and every offset it takes over the log (hourly samples)."""
    import datetime as dt

    lo, hi = float(np.min(utc_s)), float(np.max(utc_s))
    probes = np.append(np.arange(lo, hi, HOUR_S), [hi, 0.5 * (lo + hi)])
    seen: list[float] = []
    for t in probes[:: max(1, probes.size // 2000)].tolist() + [0.5 * (lo + hi)]:
        off = dt.datetime.fromtimestamp(t, tz).utcoffset()
        seen.append(off.total_seconds() / HOUR_S if off is not None else 0.0)
    return seen[-1], tuple(sorted(set(seen)))


def _local_seconds(utc: np.ndarray, tz: Any, offsets: tuple[float, ...]) -> np.ndarray:
    """Wall-clock seconds in tz (a local clock that jumps at DST changes)."""
    if len(offsets) == 1:
        return utc + offsets[0] * HOUR_S
    stamps = pd.to_datetime(pd.Series(np.round(utc * 1e9).astype(np.int64)), utc=True).dt.tz_convert(tz)
    wall = stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return wall.astype(np.float64) * 1e-9
