"""Charts of `capsim plan` and `capsim breakeven` folders, read from plan.json / breakeven.json.

The `--json` output of those commands (docs/planning.md):
  plan.json       {"key", "value", "confidence", "monthly_cost_usd", "tried": [{"value", "p_meet", "replications"}]}
  breakeven.json  {"volumes", "api_monthly_usd", "self_hosted_monthly_usd", "hybrid_monthly_usd",
                   "self_hosted_servers", "breakeven_tokens_per_month"}
where each per-volume entry of the *_monthly_usd lists is a number or {"mean", "low", "high"}.
Anything malformed is skipped rather than failing the report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from sim.core.stats import wilson_interval
from sim.report.data import finite
from sim.report.style import (
    BLUE,
    GREEN,
    GREY,
    INK,
    ORANGE,
    PURPLE,
    RED,
    fmt_count,
    fmt_usd,
    fmt_usd_short,
    new_figure,
    rc,
    to_png,
)


def _num(v: Any) -> float:
    f = finite(v)
    return f if f is not None else float("nan")


def plan_chart(plan: dict[str, Any]) -> bytes | None:
    """P(meet every target) against the searched key, Wilson 95% intervals, the confidence line, the answer."""
    tried = [t for t in plan.get("tried") or [] if isinstance(t, dict) and finite(t.get("value")) is not None]
    if not tried:
        return None
    tried.sort(key=lambda t: float(t["value"]))
    x = np.array([float(t["value"]) for t in tried])
    p = np.array([_num(t.get("p_meet")) for t in tried])
    lo, hi = np.full(x.size, np.nan), np.full(x.size, np.nan)
    for i, t in enumerate(tried):
        n = finite(t.get("replications"))
        if n and n > 0 and np.isfinite(p[i]):
            k = int(round(min(1.0, max(0.0, p[i])) * n))
            lo[i], hi[i] = wilson_interval(k, int(n), 0.95)
    conf = finite(plan.get("confidence"))
    key = str(plan.get("key") or "searched value")
    answer = finite(plan.get("value"))
    with rc():
        fig = new_figure(3.8)
        ax = fig.subplots()
        title = f"Plan: P(meet every target) against {key}"
        if answer is not None:
            title += f" - answer {answer:g}"
            cost = finite(plan.get("monthly_cost_usd"))
            if cost is not None:
                title += f" at {fmt_usd(cost)}/month"
        fig.suptitle(title, x=0.01, ha="left", fontsize=12.5, fontweight="bold", color=INK)
        ok = np.isfinite(lo)
        ax.fill_between(
            x, np.where(ok, lo, p), np.where(ok, hi, p), color=BLUE, alpha=0.15, lw=0, label="95% Wilson interval"
        )
        colors = [GREEN if conf is not None and v >= conf else ORANGE for v in p]
        ax.plot(x, p, color=BLUE, lw=1.4)
        ax.scatter(x, p, c=colors, zorder=3, s=36)
        for xi, pi, t in zip(x, p, tried, strict=True):
            if np.isfinite(pi):
                ax.annotate(
                    f"{pi:.2f}\nn={t.get('replications', '?')}",
                    xy=(xi, pi),
                    xytext=(8, -28) if pi > 0.8 else (0, 8),
                    textcoords="offset points",
                    ha="left" if pi > 0.8 else "center",
                    fontsize=8.5,
                    color=GREY,
                )
        if conf is not None:
            ax.axhline(conf, color=RED, ls="--", lw=1.6, label=f"required confidence {conf:g}")
        if answer is not None:
            ax.axvline(answer, color=GREEN, lw=2.0, label=f"answer: {key} = {answer:g}")
        ax.set_ylim(-0.02, 1.15)
        ax.margins(x=0.08)
        ax.set_xlabel(key)
        ax.set_ylabel("P(meet)")
        if np.allclose(x, np.round(x)):
            ax.set_xticks(x)
        ax.legend(loc="lower right")
        return to_png(fig)


def _series(values: Any, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(mean, low, high) arrays from a list of numbers or {mean, low, high} objects; None if unusable."""
    if not isinstance(values, list) or len(values) != n:
        return None
    mean, low, high = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for i, v in enumerate(values):
        if isinstance(v, dict):
            mean[i], low[i], high[i] = _num(v.get("mean")), _num(v.get("low")), _num(v.get("high"))
        else:
            mean[i] = _num(v)
    if not np.isfinite(mean).any():
        return None
    return mean, low, high


def breakeven_chart(be: dict[str, Any]) -> bytes | None:
    """Monthly cost against monthly token volume for API-only, self-hosted and hybrid, bands, break-even marked."""
    vols = be.get("volumes")
    if not isinstance(vols, list) or not vols:
        return None
    v = np.array([_num(x) for x in vols])
    if not np.isfinite(v).all():
        return None
    order = np.argsort(v)
    v = v[order]
    lines = [
        ("api_monthly_usd", "API only", ORANGE),
        ("self_hosted_monthly_usd", "self-hosted", BLUE),
        ("hybrid_monthly_usd", "hybrid", PURPLE),
    ]
    be_vol = finite(be.get("breakeven_tokens_per_month"))
    with rc():
        fig = new_figure(4.2)
        ax = fig.subplots()
        title = "Break-even: monthly cost against monthly token volume"
        title += (
            f" - break-even at {fmt_count(be_vol)} tokens/month" if be_vol is not None else " - no break-even in range"
        )
        fig.suptitle(title, x=0.01, ha="left", fontsize=12.5, fontweight="bold", color=INK)
        drawn = False
        top, bottom = 0.0, float("inf")
        for key, label, color in lines:
            s = _series(be.get(key), v.size)
            if s is None:
                continue
            mean, low, high = (a[order] for a in s)
            band_ok = np.isfinite(low) & np.isfinite(high)
            if band_ok.any():
                ax.fill_between(
                    v, np.where(band_ok, low, mean), np.where(band_ok, high, mean), color=color, alpha=0.18, lw=0
                )
            ax.plot(
                v,
                mean,
                color=color,
                lw=2,
                marker="o",
                ms=4,
                label=label + (" (band: interval)" if band_ok.any() else ""),
            )
            top = max(top, float(np.nanmax(np.where(band_ok, high, mean))))
            bottom = min(bottom, float(np.nanmin(np.where(band_ok, low, mean))))
            drawn = True
            if key == "self_hosted_monthly_usd":
                servers = be.get("self_hosted_servers")
                if isinstance(servers, list) and len(servers) == v.size:
                    for xi, yi, sv in zip(v, mean, [servers[i] for i in order], strict=True):
                        if finite(sv) is not None and np.isfinite(yi):
                            ax.annotate(
                                f"{float(sv):g} srv",
                                xy=(xi, yi),
                                xytext=(0, -14),
                                textcoords="offset points",
                                ha="center",
                                fontsize=8,
                                color=BLUE,
                            )
        if not drawn:
            return None
        if be_vol is not None:
            ax.axvline(be_vol, color=GREEN, lw=2, ls="--", label=f"break-even {fmt_count(be_vol)} tokens/month")
        log = v.size > 1 and v.min() > 0 and v.max() / v.min() >= 10
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks(v)
        if log and bottom > 0:
            ax.set_yscale("log")  # costs grow with volume: equal ratios read as equal distances
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.set_ylim(bottom / 1.5, top * 1.5)
        else:
            ax.set_ylim(bottom=0, top=max(top * 1.1, 1.0))
        ax.set_xlabel("tokens per month")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: fmt_count(x)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: fmt_usd_short(y)))
        ax.set_ylabel("USD per month")
        ax.legend(loc="upper left")
        return to_png(fig)
