"""How numbers are written for people, in one style everywhere (tables, reports, chart labels).

Counts: `950`, `12.3k`, `1.2M`, `1B`, `3T`. Money: `$0.42`, `$950`, `$6k`, `$1.2M`. Shares: enough digits
to tell 99.9 % from 99.999 %. Durations: `850 ms`, `2.1 s`, `4.5 min`, `3 h`. No plotting imports here:
the command line uses these without loading matplotlib.
"""

from __future__ import annotations

import math

from sim.core.calendar import HOUR_S

_SCALES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))

# metrics that are shares of a whole (0..1); every other metric without a unit suffix is a count
SHARE_METRICS = frozenset(
    {"availability", "uptime", "slo_attainment", "gpu_utilization", "gpu_capacity_utilization", "p_meet"}
)


def is_share(metric: str) -> bool:
    """A share of a whole, printed as a percentage: availability, *_rate (cache_hit_rate), *_share.

    `api_rate_limited` is a count of 429 answers, not a rate: only the suffix counts."""
    base = metric.split(".", 1)[0]
    return base in SHARE_METRICS or base.endswith(("_rate", "_share", "_fraction", "_utilization"))


def _short(v: float, digits: int = 3) -> str:
    text = f"{v:.{digits}g}"
    return text if "e" not in text else f"{v:.0f}"


def fmt_count(v: float) -> str:
    a = abs(v)
    for scale, suffix in _SCALES:
        if a >= max(scale, 1e4):
            return f"{v / scale:.1f}{suffix}" if scale == 1e3 else f"{_short(v / scale, 4)}{suffix}"
    return f"{v:,.0f}"


def fmt_usd(v: float) -> str:
    """Money for tables and cards: `$0.42`, `$950`, `$5,891`, `$12.3k`, `$1.2M`."""
    a = abs(v)
    if a >= 1e6:
        return "$" + fmt_count(v)
    if a >= 1e4:
        return f"${v / 1e3:,.1f}k"
    if a >= 100:
        return f"${v:,.0f}"
    return f"${v:,.2f}"


def fmt_usd_short(v: float) -> str:
    """Money on chart axes and labels: `$0`, `$500`, `$6k`, `$12.5k`, `$1.2M`."""
    a = abs(v)
    for scale, suffix in _SCALES:
        if a >= scale:
            return f"${_short(v / scale)}{suffix}"
    return f"${v:,.0f}" if a >= 1 or v == 0 else f"${v:.2g}"


def fmt_seconds(v: float) -> str:
    a = abs(v)
    if a == 0:
        return "0 s"
    if a < 1:
        return f"{v * 1000:.3g} ms"
    if a < 120:
        return f"{v:.3g} s"
    if a < 7200:
        return f"{v / 60:.3g} min"
    return f"{v / HOUR_S:.3g} h"


def _percent_decimals(v: float) -> int:
    """Decimals of a percentage close to 100 % that show where it stops being nines (99.90 %, 99.99981 %)."""
    return int(min(6, max(2, math.ceil(-math.log10(1.0 - v)) - 1)))


def fmt_fraction(v: float) -> str:
    """A share as a percentage with enough digits to tell 99.9 % from 99.999 %."""
    if v >= 1.0:
        return "100%" if v == 1.0 else f"{v * 100:.4g}%"
    if v > 0.99:
        return f"{v * 100:.{_percent_decimals(v)}f}%"
    return f"{v * 100:.1f}%"


def fmt_share(v: float) -> str:
    """A share as a plain fraction for the command line: 0.9219, 0.99995, 1."""
    if v == 1.0 or v == 0.0:
        return f"{v:g}"
    if 0.99 < v < 1.0:
        return f"{v:.{_percent_decimals(v) + 2}f}"
    return f"{v:.4g}"
