"""Charts of money and spread: the bill (by component, class and path), distributions across replications,
cache hit rates."""

from __future__ import annotations

import re

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, MaxNLocator

from sim.core.metrics import metric_bounds
from sim.core.stats import bounded_t_interval
from sim.report.data import ReportData
from sim.report.style import (
    BLUE,
    GREEN,
    GREY,
    INK,
    ORANGE,
    PURPLE,
    RED,
    SERIES,
    fmt_count,
    fmt_fraction,
    fmt_seconds,
    fmt_usd,
    fmt_usd_short,
    new_figure,
    rc,
    to_png,
)

COMPONENT_RE = re.compile(r"^cost_tco_([a-z0-9_]+)_monthly_usd$")
COMPONENT_COLORS = {"api": ORANGE, "gpu": BLUE, "fixed": GREY}
# the stacked bar split by GPU pool and API provider: one colour each, pools in blues/greens, providers warm
POOL_COLORS = [BLUE, GREEN, PURPLE, "#319795", "#2c5282", "#68d391"]
PROVIDER_COLORS = [ORANGE, RED, "#b7791f", "#d53f8c", "#9c4221", "#f6ad55"]
POOL_RE = re.compile(r"^cost_gpu_monthly_usd\.pool\.(.+)$")
PROVIDER_RE = re.compile(r"^cost_api_usd\.provider\.(.+)$")
PATH_COUNTS = {
    "cache": "cache_hits",
    "gpu": "served_by_gpu",
    "api": "served_by_api",
    "api_batch": "served_by_api_batch",
}


def _components(data: ReportData) -> list[str]:
    """The parts of the monthly bill (cost_tco_<part>_monthly_usd: api, gpu, fixed, operations, ...) that
    are not 0."""
    names = list((data.summary or {}).get("metrics", {}))
    return [n for n in names if COMPONENT_RE.match(n) and (data.metric_mean(n) or 0.0) > 0]


def bill_stack(data: ReportData) -> list[tuple[str, float, str]]:
    """The stacked bar's segments (label, monthly mean, colour), bottom first: the bill's parts, the GPU part
    split by pool (`cost_gpu_monthly_usd.pool.<name>`, named pools) and the API part by provider when one of
    backends.apis is paid (each provider's share of the span's API spend, `cost_api_usd.provider.<name>`, times the
    API month: the month's usage factor is one number for every provider)."""
    out: list[tuple[str, float, str]] = []
    keys = data.breakdown_keys()
    for i, comp in enumerate(_components(data)):
        part = COMPONENT_RE.match(comp).group(1)  # type: ignore[union-attr]
        total = float(data.metric_mean(comp) or 0.0)
        pools = [(m.group(1), k) for k in keys if (m := POOL_RE.match(k))]
        providers = [(m.group(1), k) for k in keys if (m := PROVIDER_RE.match(k))]
        paid = [(n, float(data.metric_mean(k) or 0.0)) for n, k in providers]
        paid = [(n, v) for n, v in paid if v > 0]
        if part == "gpu" and pools:
            for j, (name, k) in enumerate(pools):
                v = float(data.metric_mean(k) or 0.0)
                if v > 0:
                    out.append((f"gpu:{name}", v, POOL_COLORS[j % len(POOL_COLORS)]))
        elif part == "api" and paid and (len(paid) > 1 or paid[0][0] != "api"):  # named providers
            span = sum(v for _, v in paid)
            for j, (name, v) in enumerate(paid):
                out.append((f"api:{name}", total * v / span, PROVIDER_COLORS[j % len(PROVIDER_COLORS)]))
        else:
            out.append((part, total, COMPONENT_COLORS.get(part, SERIES[i % len(SERIES)])))
    return out


def _label_bars(ax: Axes, bars: object, values: list[float], horizontal: bool = False) -> None:
    for rect, v in zip(bars, values, strict=True):  # type: ignore[call-overload]
        if horizontal:
            ax.annotate(
                fmt_usd(v),
                xy=(rect.get_x() + rect.get_width(), rect.get_y() + rect.get_height() / 2),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=9.5,
            )
        else:
            ax.annotate(
                fmt_usd(v),
                xy=(rect.get_x() + rect.get_width() / 2, rect.get_height()),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=9.5,
            )


def bill_chart(data: ReportData) -> bytes | None:
    """Monthly bill: by component with 95% CI, by class and by path."""
    comps = _components(data)
    if not comps:
        return None
    with rc():
        fig = new_figure(3.9)
        axes = fig.subplots(1, 3, width_ratios=[1.0, 1.15, 1.15])
        total = data.metric("monthly_cost_usd")
        title = "The bill per month"
        if total:
            title += f": {fmt_usd(total['mean'])} (95% CI {fmt_usd(total['ci95_low'])} - {fmt_usd(total['ci95_high'])})"
        fig.suptitle(title, x=0.01, ha="left", fontsize=12.5, fontweight="bold", color=INK)

        ax = axes[0]
        bottom = 0.0
        for lbl, v, color in bill_stack(data):  # the stacked TCO bar, GPU by pool and API by provider
            ax.bar(
                ["month"], [v], bottom=[bottom], color=color, width=0.55, edgecolor="white", label=f"{lbl} {fmt_usd(v)}"
            )
            bottom += v
        # the parts, top first, with their amounts, beside the bar
        ax.legend(fontsize=8.5, loc="center left", bbox_to_anchor=(0.34, 0.5), reverse=True, frameon=False)
        if total and total.get("ci95_low") is not None:
            lo, hi = float(total["ci95_low"]), float(total["ci95_high"])
            ax.errorbar(["month"], [bottom], yerr=[[max(0.0, bottom - lo)], [max(0.0, hi - bottom)]], color=INK,
                        capsize=5)  # fmt: skip
        ax.set_title("total cost of ownership (stacked, mean)", fontsize=11)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_usd_short(v)))
        ax.set_xlim(-0.45, 1.9)
        ax.set_ylim(0, max(bottom * 1.15, 1.0))

        _grouped(axes[1], data, "class", "by class", _class_label(data))
        _grouped(axes[2], data, "path", "by path", _path_label(data))
        return to_png(fig)


def _class_label(data: ReportData) -> dict[str, str]:
    total = data.metric_mean("requests")
    out = {}
    for k in data.breakdown_keys():
        if k.startswith("requests.class.") and total:
            name = k.split(".class.", 1)[1]
            v = data.metric_mean(k) or 0.0
            out[name] = f"{name}\n{v / total * 100:.0f}% of requests"
    return out


def _path_label(data: ReportData) -> dict[str, str]:
    out = {}
    for path, metric in PATH_COUNTS.items():
        v = data.metric_mean(metric)
        if v:
            out[path] = f"{path}\n{fmt_count(v)} served"
    for k in data.breakdown_keys():
        if k.startswith("requests.path.") or k.startswith("served.path."):
            name = k.split(".path.", 1)[1]
            v = data.metric_mean(k)
            if v:
                out[name] = f"{name}\n{fmt_count(v)} served"
    pools = _pool_names(data)
    if pools:  # the GPU path as one bar per pool
        out.pop("gpu", None)
        for name in pools:
            v = data.metric_mean(f"served_by_gpu.pool.{name}")
            out[f"gpu:{name}"] = f"gpu:{name}\n{fmt_count(v or 0.0)} served"
    return out


def _pool_names(data: ReportData) -> list[str]:
    return [m.group(1) for k in data.breakdown_keys() if (m := POOL_RE.match(k))]


SPAN_PART_RE = re.compile(r"^cost_([a-z0-9_]+)_usd$")


def _part_factor(data: ReportData, part: str, blended: float) -> float:
    """A span cost part's month multiplier: the bill's own month figure of that part over its span total
    (API usage and GPU hours are scaled to a month differently, so one blended factor would misstate the split),
    else the blended factor (monthly_cost_usd / cost_total_usd)."""
    month, span = data.metric_mean(f"cost_tco_{part}_monthly_usd"), data.metric_mean(f"cost_{part}_usd")
    return month / span if month is not None and span else blended


def panel_table(data: ReportData, by: str) -> dict[str, dict[str, float]]:
    """The monthly spend of the "by class" (`by="class"`) or "by path" (`by="path"`) panel: bar name -> cost part
    (api, gpu, fixed) -> USD per month, each part scaled to the month by its own factor, so the bars add up to the
    stacked bill; on the path panel the GPU path is one bar per named pool."""
    f = data.monthly_factor()
    sep = f".{by}."
    # components only: totals and per-token figures would count the same dollars twice
    part = r"^cost_(?!total_usd|per_1k_tokens_usd)[a-z0-9_]+_usd"
    table: dict[str, dict[str, float]] = {}
    for k in data.breakdown_keys():
        if not re.match(part + re.escape(sep), k):
            continue
        comp_full, name = k.split(sep, 1)
        m = SPAN_PART_RE.match(comp_full)
        comp = m.group(1) if m else comp_full
        table.setdefault(name, {})[comp] = (data.metric_mean(k) or 0.0) * _part_factor(data, comp, f)
    if by == "path" and not any("gpu" in v for v in table.values()):
        pools = _pool_names(data)
        for name in pools:
            v = data.metric_mean(f"cost_gpu_monthly_usd.pool.{name}")
            if v:
                table.setdefault(f"gpu:{name}", {})["gpu"] = v
        gpu = data.metric_mean("cost_gpu_usd")
        if not pools and gpu:
            table.setdefault("gpu", {})["gpu"] = gpu * _part_factor(data, "gpu", f)
    return table


def _grouped(ax: Axes, data: ReportData, by: str, title: str, labels: dict[str, str]) -> None:
    """Horizontal stacked bars: one bar per class (or path), one segment per cost part."""
    f = data.monthly_factor()
    sep = f".{by}."
    table = panel_table(data, by)
    for name in labels:
        table.setdefault(name, {})
    ax.set_title(title, fontsize=11)
    if not table:
        ax.text(0.5, 0.5, "no breakdown recorded", ha="center", va="center", transform=ax.transAxes, color=GREY)
        ax.set_axis_off()
        return
    if sum(sum(v.values()) for v in table.values()) == 0.0:
        lines = [f"No spend attributed {title}."]
        gpu = data.metric_mean("cost_gpu_usd")
        if sep == ".class." and gpu:
            lines.append(f"GPU cost ({fmt_usd(gpu * _part_factor(data, 'gpu', f))}/month) is shared")
            lines.append("by every class it serves:")
        lines += [lbl.replace("\n", ": ") for lbl in labels.values()]
        ax.text(
            0.02,
            0.92,
            "\n".join(lines),
            ha="left",
            va="top",
            transform=ax.transAxes,
            color=INK,
            fontsize=10,
            linespacing=1.6,
        )
        ax.set_axis_off()
        return
    names = sorted(table, key=lambda n: -sum(table[n].values()))
    comps = sorted({c for v in table.values() for c, x in v.items() if x})  # parts with spend
    y = np.arange(len(names))
    left = np.zeros(len(names))
    for i, comp in enumerate(comps):
        vals = np.array([table[n].get(comp, 0.0) for n in names])
        ax.barh(y, vals, left=left, color=COMPONENT_COLORS.get(comp, SERIES[i % len(SERIES)]), label=comp, height=0.6)
        left += vals
    totals = left
    for yi, v in zip(y, totals, strict=True):
        ax.annotate(fmt_usd(v), xy=(v, yi), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9.5)
    ax.set_yticks(y, [labels.get(n, n) for n in names], fontsize=9)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_usd_short(v)))
    ax.set_xlim(0, max(float(totals.max()) * 1.35, 1.0))
    ax.grid(axis="y", visible=False)
    if len(comps) > 1:
        ax.legend(loc="lower right", fontsize=8.5)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=3))


DIST_METRICS = [
    ("monthly_cost_usd", "monthly cost", fmt_usd, BLUE),
    ("peak_ttft_p95_s", "peak-hour p95 TTFT", fmt_seconds, ORANGE),
    ("availability", "availability", fmt_fraction, GREEN),
]


def distributions_chart(data: ReportData) -> bytes | None:
    """Histograms across replications with each replication as a tick, the mean and its 95% CI."""
    present = [(m, t, fm, c) for m, t, fm, c in DIST_METRICS if data.rep_values(m).size]
    if not present:
        return None
    targets = {m: (op, v) for m, op, v in data.targets()}
    with rc():
        fig = new_figure(3.3)
        axes = fig.subplots(1, len(present), squeeze=False)[0]
        n = int(max(data.rep_values(m).size for m, *_ in present))
        fig.suptitle(
            f"Spread across {n} replications (bars: histogram; ticks: replications; line and bracket: mean, 95% CI)",
            x=0.01,
            ha="left",
            fontsize=12.5,
            fontweight="bold",
            color=INK,
        )
        for ax, (metric, title, fmt, color) in zip(axes, present, strict=True):
            raw = data.rep_values(metric)
            bounds = metric_bounds(metric)
            ti_raw = bounded_t_interval(raw, *bounds)
            if ti_raw is not None:
                ax.set_title(f"{title}: {fmt(ti_raw[0])}", fontsize=11)
            target = targets.get(metric)
            tick_fmt = fmt
            x = raw
            if metric == "availability" and float(raw.min()) > 0.99:
                # 99.9998 % vs 99.9997 % is unreadable; the same spread as requests lost per million is not
                x = (1.0 - raw) * 1e6
                bounds = (0.0, 1e6)
                target = (target[0], (1.0 - target[1]) * 1e6) if target else None
                ax.set_xlabel("requests not served per million")

                span = float(x.max() - x.min()) or max(1.0, float(x.max()))
                decimals = int(min(6, max(0, np.ceil(-np.log10(span / 4.0)))))

                def tick_fmt(v: float, decimals: int = decimals) -> str:
                    return f"{v:.{decimals}f}"

            _spread_panel(ax, x, color, tick_fmt, target, bounds)
        return to_png(fig)


def _spread_panel(
    ax: Axes,
    x: np.ndarray,
    color: str,
    fmt: object,
    target: tuple[str, float] | None,
    bounds: tuple[float | None, float | None] = (None, None),
) -> None:
    lo_x, hi_x = float(x.min()), float(x.max())
    if hi_x - lo_x <= 0:
        pad = abs(lo_x) * 0.002 if lo_x else 1.0
        lo_x, hi_x = lo_x - pad, hi_x + pad
    span = hi_x - lo_x
    bins = np.linspace(lo_x, hi_x, int(min(20, max(5, np.sqrt(x.size) * 2))) + 1).tolist()
    ax.hist(x, bins=bins, color=color, alpha=0.55, edgecolor="white")
    top = ax.get_ylim()[1]
    ax.plot(x, np.full(x.size, -0.04 * top), "|", color=INK, ms=10, mew=1.2, clip_on=False)
    top *= 1.12
    ti = bounded_t_interval(x, *bounds)
    if ti is not None:
        mean, clo, chi = ti
        ax.axvline(mean, color=INK, lw=1.6)
        ax.errorbar(mean, top * 0.97, xerr=[[mean - clo], [chi - mean]], color=INK, capsize=5, lw=1.6)
        lo_x, hi_x = min(lo_x, clo), max(hi_x, chi)
    if target is not None:
        op, v = target
        if lo_x - 3 * span <= v <= hi_x + 3 * span:
            ax.axvline(v, color=RED, lw=1.8, ls="--")
            ax.annotate("target", xy=(v, top * 0.85), xytext=(3, 0), textcoords="offset points", color=RED, fontsize=9)
            lo_x, hi_x = min(lo_x, v), max(hi_x, v)
    pad = 0.08 * (hi_x - lo_x)
    ax.set_xlim(lo_x - pad, hi_x + pad)
    ax.set_ylim(-0.08 * top, top * 1.08)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))  # type: ignore[operator]
    ax.tick_params(axis="x", labelsize=9)
    ax.set_ylabel("replications")


def hit_rates(data: ReportData) -> list[tuple[str, np.ndarray]]:
    """Per-replication hit rates: the response cache (cache_hits / requests), then any *hit_rate* column."""
    out: list[tuple[str, np.ndarray]] = []
    reps = data.reps
    if reps is None:
        return out
    enabled = bool(data.get("cache.response.enabled", False))
    if "cache_hits" in reps.columns and "requests" in reps.columns:
        req = reps["requests"].to_numpy(dtype=np.float64)
        hits = reps["cache_hits"].to_numpy(dtype=np.float64)
        with np.errstate(all="ignore"):
            rate = np.where(req > 0, hits / req, np.nan)
        rate = rate[np.isfinite(rate)]
        if rate.size and (enabled or float(rate.max()) > 0):
            out.append(("response cache (all requests)", rate))
        for col in reps.columns:
            if col.startswith("cache_hits.class."):
                name = col.split(".class.", 1)[1]
                if f"requests.class.{name}" in reps.columns:
                    r = reps[f"requests.class.{name}"].to_numpy(dtype=np.float64)
                    h = reps[col].to_numpy(dtype=np.float64)
                    with np.errstate(all="ignore"):
                        v = np.where(r > 0, h / r, np.nan)
                    v = v[np.isfinite(v)]
                    if v.size:
                        out.append((f"response cache: {name}", v))
    for col in sorted(reps.columns):
        if "hit_rate" in col or "hit_ratio" in col:
            v = data.rep_values(col)
            if v.size and float(v.min()) >= 0 and float(v.max()) <= 1:
                out.append((col, v))
    return out


def cache_chart(data: ReportData) -> bytes | None:
    rates = hit_rates(data)
    if not rates:
        return None
    with rc():
        fig = new_figure(1.0 + 0.4 * len(rates))
        ax = fig.subplots()
        fig.suptitle(
            "Cache hit rates (mean, 95% CI across replications)",
            x=0.01,
            ha="left",
            fontsize=12.5,
            fontweight="bold",
            color=INK,
        )
        y = np.arange(len(rates))
        for i, (_name, v) in enumerate(rates):
            ti = bounded_t_interval(v, 0.0, 1.0)
            if ti is None:
                continue
            mean, lo, hi = ti
            ax.barh(i, mean, color=PURPLE if i else GREEN, height=0.5)
            ax.errorbar(mean, i, xerr=[[mean - lo], [hi - mean]], color=INK, capsize=4)
            ax.annotate(f"{mean * 100:.1f}%", xy=(mean, i), xytext=(8, 0), textcoords="offset points", va="center")
        ax.set_yticks(y, [n for n, _ in rates])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.08)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:.0f}%"))
        ax.grid(axis="y", visible=False)
        return to_png(fig)
