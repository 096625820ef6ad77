"""The frontier chart of a multi-dimensional `capsim plan` folder, read from plan.json.

Every simulated point at (p95 TTFT, monthly cost): the latency is the first target's TTFT metric
(`peak_ttft_p95_s`, `ttft_p95_s`, ...) or else `ttft_p95_s`; both with their 95% t intervals as bars
(lower latency bars clipped at a third of the mean: the axis is logarithmic); coloured by GPU type; filled
where the point meets the targets with the required confidence, hollow where it does not; the Pareto
frontier joined by a line; the chosen (cheapest meeting) point starred.
Anything malformed is skipped rather than failing the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.report.data import finite
from sim.report.style import GREY, INK, RED, SERIES, fmt_usd, new_figure, rc, to_png

CLIP = 3.0  # lower latency bars end at mean / CLIP at the least (the axis is logarithmic)


def is_multi(plan: dict[str, Any]) -> bool:
    """A plan over more than the one searched range (the one-dimensional plan has its own chart)."""
    dims = [d for d in plan.get("dimensions") or [] if isinstance(d, dict)]
    return bool(dims) and not (len(dims) == 1 and "range" in dims[0])


def latency_metric(plan: dict[str, Any]) -> str:
    for t in plan.get("targets") or []:
        name = str(t).split("<", 1)[0].split(">", 1)[0]
        if "ttft" in name:
            return name
    return "ttft_p95_s"


def _xy(e: dict[str, Any], metric: str) -> tuple[float, float, list[float], list[float]] | None:
    m = (e.get("metrics") or {}).get(metric) or {}
    x, y = finite(m.get("mean")), finite(e.get("monthly_cost_usd"))
    if x is None or y is None:
        return None
    xlo, xhi = (m.get("ci95") or [x, x])[:2]
    ylo, yhi = (e.get("monthly_cost_ci95") or [y, y])[:2]
    low = max(_or(xlo, x), x / CLIP)  # a t interval of a skewed latency may reach below 0: not on a log axis
    return x, y, [x - low, _or(xhi, x) - x], [y - _or(ylo, y), _or(yhi, y) - y]


def _or(v: Any, default: float) -> float:
    f = finite(v)
    return default if f is None else f


def frontier_chart(plan: dict[str, Any]) -> bytes | None:
    """Monthly cost against p95 TTFT of every point simulated (None without two points to compare)."""
    tried = [e for e in plan.get("tried") or [] if isinstance(e, dict)]
    if len(tried) < 2 or not is_multi(plan):
        return None
    metric = latency_metric(plan)
    gpus = sorted({str(e.get("gpu", "?")) for e in tried})
    color = {g: SERIES[i % len(SERIES)] for i, g in enumerate(gpus)}
    best = (plan.get("best") or {}).get("values")
    with rc():
        fig = new_figure(5.0)
        ax = fig.subplots()
        fig.suptitle(
            f"Frontier: monthly cost against {metric} ({len(tried)} points simulated)",
            x=0.01,
            ha="left",
            fontsize=12.5,
            fontweight="bold",
            color=INK,
        )
        labelled: set[str] = set()
        for e in tried:
            xy = _xy(e, metric)
            if xy is None:
                continue
            x, y, xerr, yerr = xy
            g = str(e.get("gpu", "?"))
            meets = str(e.get("decision", "")).startswith("meets")
            ax.errorbar(
                [x],
                [y],
                xerr=[[xerr[0]], [xerr[1]]],
                yerr=[[yerr[0]], [yerr[1]]],
                fmt="o",
                ms=6,
                color=color[g],
                mfc=color[g] if meets else "white",
                elinewidth=0.8,
                capsize=2,
                label=g if g not in labelled else None,
                zorder=3,
            )
            labelled.add(g)
            if e.get("values") == best:
                ax.scatter([x], [y], marker="*", s=380, color=RED, zorder=4, label="chosen: " + _short(e["values"]))
        front = [xy for f in plan.get("pareto") or [] if (xy := _xy(f, metric)) is not None]
        if len(front) > 1:
            front.sort()
            ax.plot([p[0] for p in front], [p[1] for p in front], color=GREY, lw=1.0, ls="--", label="Pareto frontier")
        for t in plan.get("targets") or []:
            text = str(t)
            if text.startswith(metric + "<="):
                limit = finite(text.split("<=", 1)[1])
                if limit is not None:
                    ax.axvline(limit, color=RED, ls=":", lw=1.4, label=f"target {text}")
        ax.set_xscale("log")
        ax.set_xlabel(f"{metric} (mean over replications, 95% CI; hollow: does not meet the targets)")
        ax.set_ylabel("monthly cost, USD (95% CI)")
        ax.yaxis.set_major_formatter(lambda v, _pos: fmt_usd(v))
        ax.legend(fontsize=8.5, loc="upper right")
        return to_png(fig)


def _short(values: dict[str, Any]) -> str:
    return ", ".join(f"{str(k).rsplit('.', 1)[-1]}={v}" for k, v in values.items())


def write_frontier_chart(plan: dict[str, Any], path: Path) -> bool:
    """frontier.png beside plan.json (written atomically); False when there is nothing to draw."""
    from sim.core.atomic import write_atomic

    png = frontier_chart(plan)
    if png is None:
        return False

    def write(fh: Any) -> None:
        fh.write(png)

    write_atomic(path, write)
    return True
