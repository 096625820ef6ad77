"""Figure helpers shared by the charts: one Agg figure per chart, no pyplot (no global figure state)."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
from matplotlib.figure import Figure

DPI = 100
WIDTH_IN = 11.0  # 1100 px: fits a laptop screen at 100 % zoom

INK = "#1f2933"
GRID = "#d9dee3"
BLUE = "#2b6cb0"
ORANGE = "#dd6b20"
GREEN = "#2f855a"
RED = "#c53030"
PURPLE = "#6b46c1"
GREY = "#718096"
PEAK = "#f6e05e"
SERIES = [BLUE, ORANGE, GREEN, PURPLE, RED, "#319795", "#b7791f", GREY]

RC: dict[str, Any] = {
    "font.size": 10.5,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.edgecolor": GREY,
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": GRID,
    "grid.linewidth": 0.7,
    "xtick.color": INK,
    "ytick.color": INK,
    "legend.frameon": False,
    "legend.fontsize": 9.5,
}


def new_figure(height_in: float, width_in: float = WIDTH_IN) -> Figure:
    import matplotlib

    with matplotlib.rc_context(RC):  # type: ignore[arg-type]
        fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    return fig


def rc() -> Any:
    """Context under which axes are created and drawn (carries the report's style)."""
    import matplotlib

    return matplotlib.rc_context(RC)  # type: ignore[arg-type]


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with rc():
        fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def band(values: np.ndarray, lo: float = 5.0, hi: float = 95.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_lo, median, p_hi) along axis 0 of a (replications x points) array, NaN where a column has no value."""
    values = np.asarray(values, dtype=np.float64)
    if values.size and not np.isnan(values).any():  # the fast path: nanpercentile loops over columns
        q = np.percentile(values, [lo, 50.0, hi], axis=0)
        return q[0], q[1], q[2]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanpercentile(values, [lo, 50.0, hi], axis=0)
    return q[0], q[1], q[2]


def fmt_usd(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"${v / 1e6:,.2f}M"
    if a >= 1e4:
        return f"${v / 1e3:,.1f}k"
    if a >= 100:
        return f"${v:,.0f}"
    return f"${v:,.2f}"


def fmt_count(v: float) -> str:
    a = abs(v)
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M")):
        if a >= scale:
            return f"{v / scale:.4g}{suffix}"
    if a >= 1e4:
        return f"{v / 1e3:.1f}k"
    return f"{v:,.0f}"


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
    return f"{v / 3600:.3g} h"


def fmt_fraction(v: float) -> str:
    """A share as a percentage with enough digits to tell 99.9 % from 99.999 %."""
    if v >= 1.0:
        return "100%" if v == 1.0 else f"{v * 100:.4g}%"
    if v > 0.99:
        k = int(min(6, max(2, np.ceil(-np.log10(1.0 - v)) - 1)))
        return f"{v * 100:.{k}f}%"
    return f"{v * 100:.1f}%"
