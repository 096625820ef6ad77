"""Charts over the simulated day: load against capacity, latency by hour, utilization by hour per pool."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, MultipleLocator, NullLocator

from sim.core.calendar import WEEKDAYS
from sim.report.data import ReportData
from sim.report.style import (
    BLUE,
    GREEN,
    GREY,
    INK,
    ORANGE,
    PEAK,
    PURPLE,
    RED,
    band,
    fmt_seconds,
    new_figure,
    rc,
    to_png,
)

MAX_POINTS = 480  # per-minute series are averaged into bins so a chart draws at most this many points


def _matrix(ts: pd.DataFrame, column: str) -> np.ndarray:
    """(replications x minutes) array of one timeseries column."""
    wide = ts.pivot_table(index="replication", columns="minute", values=column, aggfunc="mean")
    return wide.to_numpy(dtype=np.float64)


def _binned(m: np.ndarray, size: int) -> np.ndarray:
    if size <= 1:
        return m
    n = (m.shape[1] // size) * size
    if n == 0:
        return m
    with np.errstate(all="ignore"):
        return m[:, :n].reshape(m.shape[0], -1, size).mean(axis=2)


def _hour_axis(ax: Axes, horizon_h: float, start_weekday: str | None) -> None:
    ax.set_xlim(0, horizon_h)
    if horizon_h <= 48:
        ax.xaxis.set_major_locator(MultipleLocator(3 if horizon_h > 12 else 1))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{int(round(x)) % 24:02d}:00"))
    else:
        step = 24 * max(1, math.ceil(horizon_h / 24 / 14))
        ax.xaxis.set_major_locator(MultipleLocator(step))
        first = WEEKDAYS.index(start_weekday) if start_weekday in WEEKDAYS else None

        def day_label(x: float, _: object) -> str:
            d = int(round(x / 24))
            return f"{WEEKDAYS[(first + d) % 7].capitalize()} d{d + 1}" if first is not None else f"day {d + 1}"

        ax.xaxis.set_major_formatter(FuncFormatter(day_label))


def peak_spans(data: ReportData, horizon_h: float, arrivals_by_hour: np.ndarray | None) -> tuple[list[float], str]:
    """Start hours (since the start of the horizon) of every peak hour, and the label to show."""
    ph = data.peak_hour
    label = "peak"
    if ph is None and arrivals_by_hour is not None and np.isfinite(arrivals_by_hour).any():
        ph = float(np.nanargmax(arrivals_by_hour))
        label = "busiest hour"
    if ph is None:
        return [], label
    starts = [d * 24.0 + ph for d in range(int(math.ceil(horizon_h / 24.0))) if d * 24.0 + ph < horizon_h]
    hh, mm = int(ph), int(round((ph - int(ph)) * 60))
    return starts, f"{hh:02d}:{mm:02d} {label}"


def _shade_peaks(ax: Axes, starts: list[float], label: str | None, width: float = 1.0) -> None:
    for i, s in enumerate(starts):
        ax.axvspan(s, s + width, color=PEAK, alpha=0.45, lw=0, zorder=0, label=label if i == 0 and label else None)


@dataclass(frozen=True)
class CapacityLine:
    label: str
    per_minute: np.ndarray  # (replications x minutes) requests the pool can hold
    color: str
    style: str


def capacity_lines(data: ReportData) -> list[CapacityLine]:
    """What the pool can hold each minute: healthy servers x max_batch, and healthy servers x the latency-bound
    batch (summary.json `latency_capacity`, backends/models/latency_capacity.py) when a TPOT or e2e target keeps
    it below max_batch."""
    ts = data.timeseries
    max_batch = data.get("backends.gpu_pool.max_batch")
    if ts is None or "healthy_servers" not in ts.columns or not max_batch:
        return []
    healthy = _matrix(ts, "healthy_servers")
    bound = (data.summary or {}).get("latency_capacity")
    bound = bound if isinstance(bound, dict) else {}
    batch, limit, target = bound.get("batch_per_server"), bound.get("per_token_limit_s"), bound.get("target")
    full = f"capacity = healthy servers x {max_batch}"
    if bound and limit is None:
        full += " (no TPOT/e2e target)"
    elif bound and isinstance(batch, int) and batch >= int(max_batch):
        full += f" (meets {target})"
    lines = [CapacityLine(full, healthy * float(max_batch), GREEN, "--")]
    if isinstance(batch, int) and batch < int(max_batch) and isinstance(limit, int | float):
        label = f"latency-bound = healthy servers x {batch} ({limit * 1e3:.3g} ms/token, {target})"
        lines.append(CapacityLine(label, healthy * float(batch), PURPLE, "-."))
    return lines


def day_chart(data: ReportData) -> bytes | None:
    """Arrivals per minute, and in-flight requests against serving capacity, median and p5-p95 band."""
    ts = data.timeseries
    if ts is None or "minute" not in ts.columns or "replication" not in ts.columns:
        return None
    has = set(ts.columns)
    n_min = int(ts["minute"].max()) + 1
    horizon_h = float(data.digest().get("horizon_h") or n_min / 60.0)
    size = max(1, math.ceil(n_min / MAX_POINTS))
    x = (np.arange(n_min // size if size > 1 else n_min) * size + size / 2.0) / 60.0
    arrivals = _binned(_matrix(ts, "arrivals"), size) if "arrivals" in has else None
    by_hour = None
    if arrivals is not None:
        med = band(arrivals)[1]
        hours = (x % 24).astype(int)
        by_hour = np.array([np.nanmean(med[hours == h]) if (hours == h).any() else np.nan for h in range(24)])
    starts, peak_label = peak_spans(data, horizon_h, by_hour)
    n_reps = int(ts["replication"].nunique())
    with rc():
        fig = new_figure(6.2)
        ax1, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.25])
        fig.suptitle(
            f"The simulated day: load against capacity (median and p5-p95 band over {n_reps} replications)",
            x=0.01,
            ha="left",
            fontsize=12.5,
            fontweight="bold",
            color=INK,
        )
        if arrivals is not None:
            lo, med, hi = band(arrivals)
            ax1.fill_between(x, lo, hi, color=BLUE, alpha=0.2, lw=0, label="p5-p95")
            ax1.plot(x, med, color=BLUE, lw=1.4, label="arrivals / min (median)")
            ax1.set_ylabel("arrivals / min")
            ax1.set_ylim(0, max(1.0, float(np.nanmax(hi)) if np.isfinite(hi).any() else 1.0) * 1.22)
        _shade_peaks(ax1, starts, peak_label)
        if starts:
            top = ax1.get_ylim()[1]
            ax1.annotate(
                peak_label,
                xy=(starts[0] + 0.5, top),
                xytext=(0, -2),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=10,
                fontweight="bold",
                color="#975a16",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            )
        ax1.set_title("Arrivals", fontsize=11)
        cap_peak = 0.0
        if "in_flight" in has:
            lo, med, hi = band(_binned(_matrix(ts, "in_flight"), size))
            ax2.fill_between(x, lo, hi, color=ORANGE, alpha=0.25, lw=0)
            ax2.plot(x, med, color=ORANGE, lw=1.4, label="in flight (median, p5-p95)")
            inflight_peak = float(np.nanmax(hi)) if np.isfinite(hi).any() else 0.0
        else:
            inflight_peak = 0.0
        for line in capacity_lines(data):
            lo, med, hi = band(_binned(line.per_minute, size))
            if np.isfinite(med).any() and np.nanmax(med) > 0:
                ax2.fill_between(x, lo, hi, color=line.color, alpha=0.15, lw=0)
                ax2.plot(x, med, color=line.color, lw=1.6, ls=line.style, label=line.label)
                cap_peak = max(cap_peak, float(np.nanmax(hi)))
        if "queue_len" in has:
            q = band(_binned(_matrix(ts, "queue_len"), size))[1]
            if np.isfinite(q).any() and np.nanmax(q) > 0.5:
                ax2.plot(x, q, color=RED, lw=1.0, label="queued (median)")
        if cap_peak > 0 and inflight_peak > 0 and cap_peak / inflight_peak > 20:
            ax2.set_yscale("log")
            ax2.yaxis.set_minor_locator(NullLocator())
            ax2.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax2.set_ylim(bottom=max(0.01, inflight_peak / 1000.0), top=cap_peak * 2.5)
            ax2.set_ylabel("requests (log scale)")
        else:
            ax2.set_ylim(0, max(cap_peak, inflight_peak, 1.0) * 1.1)
            ax2.set_ylabel("requests")
        _shade_peaks(ax2, starts, None)
        if data.warmup_h > 0:
            for ax in (ax1, ax2):
                ax.axvspan(0, data.warmup_h, color=GREY, alpha=0.15, lw=0, zorder=0)
        ax2.set_title("In flight vs serving capacity", fontsize=11)
        if not ax1.lines and not ax2.lines:
            return None
        xlabel = "time of day (simulated clock)" if horizon_h <= 48 else "simulated day"
        for ax in (ax1, ax2):
            if not ax.lines:
                ax.remove()
                continue
            if ax is ax2:  # long capacity labels: one per row, inside the panel where the lines leave room
                ax.legend(loc="best", ncol=1, framealpha=0.85)
            else:
                ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, borderaxespad=0.2)
        last = ax2 if ax2.lines else ax1
        last.tick_params(labelbottom=True)
        _hour_axis(last, horizon_h, data.get("start_weekday"))
        last.set_xlabel(xlabel)
        return to_png(fig)


def _hour_ticks(ax: Axes) -> None:
    ax.set_xlim(0, 24)
    ax.xaxis.set_major_locator(MultipleLocator(3))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{int(x) % 24:02d}:00"))


def _readable_log_ticks(ax: Axes, wanted: int = 3) -> None:
    """At least `wanted` labelled ticks on a log axis, however narrow its range (1-2-5, then every digit,
    then evenly spaced values): a panel whose latencies sit within one decade still reads."""
    lo, hi = ax.get_ylim()
    if not (lo > 0 and hi > lo):
        return
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    for subs in ((1.0,), (1.0, 2.0, 5.0), tuple(float(d) for d in range(1, 10))):
        ticks = [m * 10.0**k for k in decades for m in subs if lo <= m * 10.0**k <= hi]
        if len(ticks) >= wanted:
            ax.yaxis.set_major_locator(FixedLocator(ticks))
            return
    ax.yaxis.set_major_locator(FixedLocator(list(np.geomspace(lo, hi, wanted + 2)[1:-1])))


def latency_chart(data: ReportData) -> bytes | None:
    """TTFT and e2e p50/p95/p99 by hour of day (median over replications, p5-p95 band) with the SLO line."""
    h = data.hourly
    if h is None or "hour" not in h.columns or "replication" not in h.columns:
        return None
    panels = [("ttft", "Time to first token"), ("e2e", "End-to-end latency")]
    panels = [(k, t) for k, t in panels if any(f"{k}_p{q}_s" in h.columns for q in (50, 95, 99))]
    if not panels:
        return None
    slo_cls = data.slo_class()
    starts, peak_label = peak_spans(data, 24.0, None)
    hours = np.arange(24)
    with rc():
        fig = new_figure(4.0)
        axes = fig.subplots(1, len(panels), sharey=False, squeeze=False)[0]
        fig.suptitle(
            "Latency by hour of day: p50 / p95 / p99 (median over replications, p5-p95 band)",
            x=0.01,
            ha="left",
            fontsize=12.5,
            fontweight="bold",
            color=INK,
        )
        for ax, (key, title) in zip(axes, panels, strict=True):
            lows: list[float] = []
            highs: list[float] = []
            for q, color in ((50, GREEN), (95, ORANGE), (99, RED)):
                col = f"{key}_p{q}_s"
                if col not in h.columns:
                    continue
                wide = h.pivot_table(index="replication", columns="hour", values=col, aggfunc="mean")
                wide = wide.reindex(columns=hours)
                lo, med, hi = band(wide.to_numpy(dtype=np.float64))
                if not np.isfinite(med).any():
                    continue
                ax.fill_between(hours + 0.5, lo, hi, color=color, alpha=0.18, lw=0, step=None)
                ax.plot(hours + 0.5, med, color=color, lw=1.6, marker="o", ms=3, label=f"p{q}")
                lows.append(float(np.nanmin(lo)))
                highs.append(float(np.nanmax(hi)))
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(NullLocator())
            _shade_peaks(ax, starts, peak_label)
            slo = None
            if key == "ttft" and slo_cls is not None and slo_cls.get("slo_ttft_s"):
                slo = float(slo_cls["slo_ttft_s"])
            elif key == "e2e" and slo_cls is not None and slo_cls.get("slo_e2e_s"):
                slo = float(slo_cls["slo_e2e_s"])
            if slo is not None:
                ax.axhline(slo, color=RED, lw=2.0, ls="--", zorder=5)
                ax.annotate(
                    f"SLO {fmt_seconds(slo)} ({slo_cls.get('name', '') if slo_cls else ''})",
                    xy=(23.8, slo),
                    xytext=(0, 4),
                    ha="right",
                    textcoords="offset points",
                    color=RED,
                    fontsize=10,
                    fontweight="bold",
                )
                highs.append(slo * 1.8)
                lows.append(slo / 3.0)
            if lows and highs:
                lo_v = min(v for v in lows if v > 0) if any(v > 0 for v in lows) else 1e-3
                ax.set_ylim(lo_v / 1.5, max(highs) * 1.5)
            _readable_log_ticks(ax)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_seconds(v)))
            _hour_ticks(ax)
            ax.set_title(title, fontsize=11)
            ax.set_xlabel("hour of arrival")
            ax.legend(loc="upper right", ncol=4)
        return to_png(fig)


def _pools(ts: pd.DataFrame) -> list[str | None]:
    named = sorted({c.split(".pool.", 1)[1] for c in ts.columns if c.startswith("busy_servers.pool.")})
    return list(named) if named else [None]


def _col(base: str, pool: str | None) -> str:
    """A per-pool column is `<base>.pool.<name>` (backends.gpu_pools), as the per-pool metrics are named."""
    return base if pool is None else f"{base}.pool.{pool}"


def utilization_chart(data: ReportData) -> bytes | None:
    """Per pool and hour of day: capacity used (the work done, in full batches, over paid server-time) as the
    headline, busy (running any batch) as a secondary line, and the paid share lost to cold starts and failures."""
    ts = data.timeseries
    if (
        ts is None
        or "busy_servers" not in ts.columns
        and not any(c.startswith("busy_servers.pool.") for c in ts.columns)
    ):
        return None
    measured = ts[ts["minute"] >= data.warmup_h * 60.0]
    if measured.empty:
        return None
    hour = (measured["minute"].to_numpy() // 60) % 24
    pools = _pools(ts)
    series = []
    for pool in pools:
        busy_c, healthy_c, prov_c = (_col(b, pool) for b in ("busy_servers", "healthy_servers", "provisioned_servers"))
        cap_c = _col("capacity_used_servers", pool)
        if busy_c not in measured.columns or healthy_c not in measured.columns:
            continue
        frame = pd.DataFrame(
            {"hour": hour, "busy": measured[busy_c].to_numpy(), "healthy": measured[healthy_c].to_numpy()}
        )
        if cap_c in measured.columns:
            frame["cap"] = measured[cap_c].to_numpy()
        if prov_c in measured.columns:
            frame["prov"] = measured[prov_c].to_numpy()
        else:
            servers = data.get("backends.gpu_pool.servers") if pool in (None, "gpu_pool") else None
            frame["prov"] = float(servers) if servers is not None else frame["healthy"]
        g = frame.groupby("hour").sum().reindex(range(24))
        idle_all_day = float(np.nansum(g["healthy"].to_numpy())) <= 0 and float(np.nansum(g["busy"].to_numpy())) <= 0
        no_pool = not data.metric_mean("cost_gpu_usd") or float(np.nansum(g["prov"].to_numpy())) <= 0
        if idle_all_day and no_pool:
            continue  # no pool ran (e.g. routing api_only): nothing to show
        series.append((pool or "gpu_pool", g))
    if not series:
        return None
    starts, peak_label = peak_spans(data, 24.0, None)
    hours = np.arange(24) + 0.5
    with rc():
        # One pool per row: side by side, a pool's 4-entry legend and title leave its axes no width.
        fig = new_figure(3.9 if len(series) == 1 else 0.6 + 2.9 * len(series))
        axes = fig.subplots(len(series), 1, squeeze=False, sharex=True)[:, 0]
        fig.suptitle(
            "Utilization by hour of day, per pool: share of paid server-time (mean over replications)",
            x=0.01,
            ha="left",
            fontsize=12.5,
            fontweight="bold",
            color=INK,
        )
        for ax, (name, g) in zip(axes, series, strict=True):
            prov = g["prov"].to_numpy(dtype=np.float64)
            with np.errstate(all="ignore"):
                share = {
                    k: np.where(prov > 0, g[k].to_numpy(dtype=np.float64) / prov, np.nan) * 100
                    for k in ("busy", "healthy", "cap")
                    if k in g.columns
                }
            _shade_peaks(ax, starts, peak_label)
            down = np.clip(100 - share["healthy"], 0, None)
            ax.bar(hours, down, width=0.85, bottom=100 - down, color=RED, alpha=0.55, label="cold start / failed")
            if "cap" in share:
                ax.bar(hours, share["cap"], width=0.85, color=BLUE, label="capacity used (work / full-batch capacity)")
            ax.plot(
                hours, share["busy"], color=INK, lw=1.4, ls="--", marker="o", ms=2.5, label="busy (any batch running)"
            )
            ax.set_ylim(0, 128)
            ax.yaxis.set_major_locator(MultipleLocator(25))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}%" if v <= 100 else ""))
            ax.set_ylabel("share of paid server-time")
            metric_name = "gpu_capacity_utilization" if name == "gpu_pool" else f"gpu_capacity_utilization.pool.{name}"
            used = data.metric_mean(metric_name)
            total_prov = float(np.nansum(prov))
            if used is None and "cap" in g.columns and total_prov > 0:
                used = float(np.nansum(g["cap"].to_numpy())) / total_prov
            busy_m = data.metric_mean("gpu_utilization" if name == "gpu_pool" else f"gpu_utilization.pool.{name}")
            if busy_m is None and total_prov > 0:
                busy_m = float(np.nansum(g["busy"].to_numpy())) / total_prov
            head = [f"capacity used {used * 100:.0f}%" if used is not None else None]
            head.append(f"busy {busy_m * 100:.0f}%" if busy_m is not None else None)
            ax.set_title(f"{name}: " + ", ".join(h for h in head if h) + " of paid server-time", fontsize=11)
            _hour_ticks(ax)
            ax.set_xlabel("hour of day" if ax is axes[-1] else "")
            if ax is axes[0]:
                ax.legend(loc="upper left", ncol=4, fontsize=9)
        return to_png(fig)
