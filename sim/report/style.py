"""Figure helpers shared by the charts: one Agg figure per chart, no pyplot (no global figure state)."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sim.core.units import fmt_count, fmt_fraction, fmt_seconds, fmt_usd, fmt_usd_short  # noqa: F401 - re-exported

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
    """The figure as PNG bytes, drawn once.

    `Figure.savefig` draws a figure with a layout engine twice: once with rendering disabled to run the
    constrained layout, then again (layout off) to rasterize. Here one Agg draw runs the layout and
    rasterizes, and the RGBA buffer is written as `print_png` writes it (`matplotlib.image.imsave`, same
    dpi and metadata): the same pixels and the same bytes as `savefig(format="png", dpi=DPI,
    facecolor="white")`, which `tests/test_report_png.py` checks on the report's charts.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.image import imsave

    buf = io.BytesIO()
    with rc():
        fig.set_dpi(DPI)
        fig.set_facecolor("white")  # savefig's facecolor="white"
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        imsave(buf, canvas.buffer_rgba(), format="png", origin="upper", dpi=fig.dpi)
    return buf.getvalue()


def to_png_savefig(fig: Figure) -> bytes:
    """The reference `to_png` replaces (two draws); kept for tests/test_report_png.py."""
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
