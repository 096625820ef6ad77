"""The HTML report of a results folder: `report.html` (self-contained, images inlined) and `plots/*.png`.

Modules: data (tolerant loading of the folder), style (figure helpers), charts_day (load, latency and
utilization over the day), charts_money (bill, spread across replications, cache), charts_plan (plan and
breakeven folders), page (the HTML), compare (`capsim compare`). Charting imports matplotlib lazily, so
`capsim compare` and the CLI start without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sim.report.data import NotAResultsFolder, ReportData, is_results_folder

if TYPE_CHECKING:
    from sim.report.page import Chart

CHART_SLUGS = frozenset({"day", "latency", "utilization", "bill", "spread", "cache", "plan", "frontier", "breakeven"})

__all__ = ["NotAResultsFolder", "build_charts", "is_results_folder", "write_report"]


def build_charts(data: ReportData) -> list[Chart]:
    """Every chart the folder's data supports, in reading order (a chart with no data is left out)."""
    from sim.report.charts_day import day_chart, latency_chart, utilization_chart
    from sim.report.charts_frontier import frontier_chart, is_multi
    from sim.report.charts_money import bill_chart, cache_chart, distributions_chart
    from sim.report.charts_plan import breakeven_chart, plan_chart
    from sim.report.page import Chart

    cls = data.slo_class()
    slo = f" The dashed red line is the {cls.get('name')} class's TTFT SLO." if cls and cls.get("slo_ttft_s") else ""
    specs = [
        (
            "day",
            "The simulated day",
            day_chart,
            "Arrivals per minute and requests in flight against serving capacity: healthy servers x max_batch, "
            "and healthy servers x the latency-bound batch, the largest batch whose iteration time keeps the "
            "TPOT and e2e targets (docs/metrics.md, latency-bound capacity). "
            "Lines: median over replications; shaded: p5-p95 band; yellow: the peak hour.",
        ),
        (
            "latency",
            "Latency by hour",
            latency_chart,
            "TTFT and end-to-end latency percentiles of the requests arriving in each hour of the day." + slo,
        ),
        (
            "utilization",
            "Utilization by hour",
            utilization_chart,
            "Capacity used (bars): the work the pool did, as the server-time it would take in full batches "
            "(max_batch), over paid server-time: the headline (gpu_capacity_utilization). Busy (dashed): any "
            "batch running, however small (gpu_utilization). Red: paid, but cold-starting or failed.",
        ),
        (
            "bill",
            "The bill",
            bill_chart,
            "Monthly cost by component (API, GPU, fixed) with 95% CI, and attributed to request classes and paths.",
        ),
        (
            "spread",
            "Spread across replications",
            distributions_chart,
            "How much the monthly cost, the peak-hour p95 TTFT and availability vary from one simulated day to "
            "another; dashed red: the plan's target.",
        ),
        ("cache", "Cache hit rates", cache_chart, "Share of requests answered from a cache."),
    ]
    charts: list[Chart] = []
    for slug, title, fn, caption in specs:
        png = fn(data)
        if png:
            charts.append(Chart(slug, title, caption, png))
    if data.plan and is_multi(data.plan):
        png = frontier_chart(data.plan)
        if png:
            charts.append(
                Chart(
                    "frontier",
                    "Frontier",
                    "Monthly cost against p95 TTFT of every configuration simulated, coloured by GPU type "
                    "(filled: meets the targets with the required confidence), with 95% intervals as bars; "
                    "dashed: the Pareto frontier; star: the chosen configuration.",
                    png,
                )
            )
    elif data.plan:
        png = plan_chart(data.plan)
        if png:
            charts.append(
                Chart(
                    "plan",
                    "Plan",
                    "Share of replications meeting every target at each value "
                    "tried, with its 95% Wilson interval; the answer is the smallest value whose "
                    "share reaches the required confidence.",
                    png,
                )
            )
    if data.breakeven:
        png = breakeven_chart(data.breakeven)
        if png:
            charts.append(
                Chart(
                    "breakeven",
                    "Break-even",
                    "Total monthly cost of serving each volume through the "
                    "API only, self-hosted GPUs (servers sized by the plan search) and the hybrid.",
                    png,
                )
            )
    return charts


def write_report(folder: Path) -> Path:
    """Build report.html and plots/*.png in a results folder; returns the report's path."""
    from sim.core.atomic import dir_fd, unlink_own, write_bytes_atomic, write_text_atomic
    from sim.core.version import __version__
    from sim.report.data import load
    from sim.report.page import render

    folder = Path(folder)
    data = load(folder)
    charts = build_charts(data)
    for c in charts:
        write_bytes_atomic(folder / "plots" / f"{c.slug}.png", c.png)
    made = {c.slug for c in charts}
    if (folder / "plots").is_dir():
        with dir_fd(folder / "plots", create=False) as fd:  # a symlinked plots/ is refused (UnsafePath)
            for slug in CHART_SLUGS - made:  # a chart an earlier build drew but this data no longer supports
                unlink_own(fd, f"{slug}.png")
    path = folder / "report.html"
    write_text_atomic(path, render(data, charts, __version__))
    return path
