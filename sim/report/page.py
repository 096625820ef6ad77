"""The HTML page: digest, headline cards and table, charts inlined as base64 PNG data URIs. No scripts,
no external resources: the file opens the same offline, in a mail attachment or from a CI artifact."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.core.metrics import HEADLINE, METRICS
from sim.core.units import is_share
from sim.report.data import ReportData, finite
from sim.report.style import fmt_count, fmt_fraction, fmt_seconds, fmt_usd
from sim.report.traffic_prices import traffic_price_items


@dataclass
class Chart:
    slug: str
    title: str
    caption: str
    png: bytes


def fmt_metric(name: str, v: Any) -> str:
    f = finite(v)
    if f is None:
        return "n/a"
    base = name.split(".", 1)[0]
    if base.endswith("_usd"):
        return fmt_usd(f) if abs(f) >= 0.01 or f == 0 else f"${f:.3g}"
    if base.endswith("_s"):
        return fmt_seconds(f)
    if is_share(base):
        return fmt_fraction(f)
    if float(f).is_integer() or abs(f) >= 100:
        return fmt_count(f)
    return f"{f:.4g}"


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2933;
background:#f7f8fa;margin:0;line-height:1.45}
main{max-width:1160px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:26px;margin:4px 0 2px}
h2{font-size:19px;margin:30px 0 8px;border-bottom:1px solid #d9dee3;padding-bottom:4px}
.sub{color:#52606d;margin:0 0 14px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:14px 0}
.card{background:#fff;border:1px solid #d9dee3;border-radius:8px;padding:10px 14px;min-width:170px;flex:1}
.card .k{font-size:13px;color:#52606d}
.card .v{font-size:24px;font-weight:650;margin:2px 0}.card .ci{font-size:12.5px;color:#52606d}
.ok{color:#2f855a}.bad{color:#c53030}
figure{background:#fff;border:1px solid #d9dee3;border-radius:8px;margin:16px 0;padding:8px;scroll-margin-top:8px}
figure img{display:block;width:100%;height:auto}
figcaption{font-size:13.5px;color:#52606d;padding:4px 6px 2px}
table{border-collapse:collapse;background:#fff;font-size:13.5px;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid #e4e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#eef1f4}
details{margin:10px 0}summary{cursor:pointer;color:#2b6cb0;font-weight:600}
pre{background:#fff;border:1px solid #d9dee3;padding:10px;overflow:auto;font-size:12.5px;max-height:480px}
dl.digest{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0;font-size:14px}
dl.digest dt{color:#52606d}dl.digest dd{margin:0}
nav a{margin-right:12px;font-size:13.5px;color:#2b6cb0}
footer{color:#7b8794;font-size:12px;margin-top:30px}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _card(title: str, value: str, ci: str = "", cls: str = "") -> str:
    return (
        f"<div class='card'><div class='k'>{_e(title)}</div><div class='v {cls}'>{_e(value)}</div>"
        f"<div class='ci'>{_e(ci)}</div></div>"
    )


def _ci_text(data: ReportData, name: str) -> str:
    m = data.metric(name)
    if not m or m.get("ci95_low") is None:
        return ""
    return f"95% CI {fmt_metric(name, m['ci95_low'])} - {fmt_metric(name, m['ci95_high'])}"


def _target_check(data: ReportData) -> list[tuple[str, int, int]]:
    """(target text, replications meeting it, replications with a value) per plan target."""
    out = []
    for metric, op, v in data.targets():
        x = data.rep_values(metric)
        if not x.size:
            continue
        met = int(np.count_nonzero(x <= v if op == "<=" else x >= v))
        out.append((f"{metric} {op} {v:g}", met, int(x.size)))
    return out


def cards(data: ReportData) -> str:
    if not data.summary:
        return ""
    out = []
    if data.metric("monthly_cost_usd"):
        out.append(
            _card(
                "monthly cost",
                fmt_metric("monthly_cost_usd", data.metric_mean("monthly_cost_usd")),
                _ci_text(data, "monthly_cost_usd"),
            )
        )
    if data.metric("peak_ttft_p95_s"):
        v = finite(data.metric_mean("peak_ttft_p95_s"))
        # censored in some replication: more peak-hour requests got no answer than the p95 allows (a floor)
        censored = bool(finite(data.metric_mean("peak_ttft_p95_s.censored")))
        cls = data.slo_class()
        slo = finite(cls.get("slo_ttft_s")) if cls else None
        css = "" if slo is None or v is None else ("ok" if v <= slo and not censored else "bad")
        label = "peak-hour p95 TTFT" + (f" (SLO {fmt_seconds(slo)})" if slo is not None else "")
        if v is None:  # the horizon holds no whole peak hour
            out.append(_card(label, "n/a", "the horizon does not cover the peak hour", css))
        else:
            shown = ("≥ " if censored else "") + fmt_seconds(v)
            out.append(_card(label, shown, _ci_text(data, "peak_ttft_p95_s"), css))
    for name, title in (
        ("availability", "availability"),
        ("slo_attainment", "within TTFT SLO"),
        ("gpu_capacity_utilization", "GPU capacity used"),
        ("gpu_utilization", "GPU busy"),
    ):
        if data.metric(name):
            out.append(_card(title, fmt_metric(name, data.metric_mean(name)), _ci_text(data, name)))
    return f"<div class='cards'>{''.join(out)}</div>" if out else ""


def _metric_rows(data: ReportData, names: list[str], source: dict[str, Any]) -> str:
    rows = []
    for n in names:
        m = source.get(n)
        if not isinstance(m, dict):
            continue
        tip = METRICS.get(n.split(".", 1)[0], "")
        rows.append(
            f"<tr><td title='{_e(tip)}'>{_e(n)}</td><td>{fmt_metric(n, m.get('mean'))}</td>"
            f"<td>{fmt_metric(n, m.get('ci95_low'))} - {fmt_metric(n, m.get('ci95_high'))}</td>"
            f"<td>{fmt_metric(n, m.get('p5'))}</td><td>{fmt_metric(n, m.get('p50'))}</td>"
            f"<td>{fmt_metric(n, m.get('p95'))}</td></tr>"
        )
    head = "<tr><th>metric</th><th>mean</th><th>95% CI of the mean</th><th>p5</th><th>p50</th><th>p95</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>" if rows else ""


def headline(data: ReportData) -> str:
    if not data.summary:
        return ""
    metrics = data.summary.get("metrics", {}) or {}
    shown = [n for n in HEADLINE if n in metrics]
    extra = [n for n in metrics if n not in METRICS]  # metrics added after the catalog: show them up front too
    parts = [_metric_rows(data, shown + extra, metrics)]
    parts.append(
        "<p class='sub'>Mean over replications with the Student-t 95% interval of the mean; p5/p50/p95 are across "
        "replications. Hover a metric name for its definition.</p>"
    )
    rest = [n for n in metrics if n not in shown and n not in extra]
    if rest:
        parts.append(f"<details><summary>All metrics</summary>{_metric_rows(data, rest, metrics)}</details>")
    bd = data.summary.get("breakdown", {}) or {}
    if bd:
        parts.append(
            f"<details><summary>Breakdown by class and path</summary>{_metric_rows(data, sorted(bd), bd)}</details>"
        )
    return "".join(parts)


def digest(data: ReportData) -> str:
    d = data.digest()
    items = [
        ("seed", d.get("seed")),
        ("replications", d.get("replications")),
        ("horizon", f"{d['horizon_h']:g} h" if finite(d.get("horizon_h")) is not None else None),
        ("warm-up", f"{d['warmup_h']:g} h" if finite(d.get("warmup_h")) else None),
        ("clock starts", f"00:00 {d['start_weekday']}" if d.get("start_weekday") else None),
        *traffic_price_items(data),
        ("capsim version", d.get("capsim_version")),
        ("created (UTC)", d.get("created_utc")),
        ("folder", str(data.folder)),
    ]
    mc = (data.summary or {}).get("month_composition") or {}
    if mc.get("gpu_provisioned") and finite(mc.get("price_per_server_hour_usd")) is not None:
        items.append(("GPU server price", f"${mc['price_per_server_hour_usd']:,.2f}/h: {mc.get('price_source', '?')}"))
    if finite(mc.get("hours_per_month")) is not None:
        items.append(("month composed as", month_text(mc)))
    checks = _target_check(data)
    if checks:
        items.append(("plan targets", "; ".join(f"{t}: met in {k}/{n} replications" for t, k, n in checks)))
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items if v is not None)
    cfg = ""
    if data.config_text:
        cfg = f"<details><summary>Resolved config (config.yaml)</summary><pre>{_e(data.config_text)}</pre></details>"
    return f"<dl class='digest'>{dl}</dl>{cfg}"


def month_text(mc: dict[str, Any]) -> str:
    """One line: how monthly_cost_usd was composed from the simulated span (summary.json month_composition)."""
    hpm = mc["hours_per_month"]
    text = f"{hpm:g} h = {hpm / 168:.4g} weeks (each weekday {hpm / 168:.4g} times); "
    if finite(mc.get("expected_requests_per_month")) is not None:
        factors = mc.get("day_factors") or {}
        text += (
            f"usage: the span's bill per request x {mc['expected_requests_per_month']:,.0f} expected requests a month"
            f" (day factors {', '.join(f'{k} {v:g}' for k, v in factors.items())}); "
        )
    else:
        text += f"usage: {mc.get('usage_basis', '')}; "
    stands = mc.get("weekday_stands_for") or {}
    text += "weekdays: " + ", ".join(f"{k}: {v}" for k, v in stands.items())
    return text


def plan_tables(data: ReportData) -> str:
    parts = []
    if data.plan and isinstance(data.plan.get("tried"), list):
        multi = any(isinstance(t, dict) and len(t.get("values") or {}) > 1 for t in data.plan["tried"])

        def point(t: dict[str, Any]) -> str:
            if not multi:
                return _e(t.get("value"))
            return _e(", ".join(f"{str(k).rsplit('.', 1)[-1]}={v}" for k, v in (t.get("values") or {}).items()))

        rows = "".join(
            f"<tr><td>{point(t)}</td><td>{_e(t.get('p_meet'))}</td><td>{_e(t.get('replications'))}</td>"
            f"<td>{_e(t.get('decision'))}</td><td>{_e(t.get('monthly_cost_usd'))}</td></tr>"
            for t in data.plan["tried"]
            if isinstance(t, dict)
        )
        head = "point" if multi else _e(data.plan.get("key", "value"))
        parts.append(
            f"<details><summary>Plan: every value tried</summary><table><tr><th>{head}"
            f"</th><th>P(meet)</th><th>replications</th><th>decision</th><th>monthly cost</th></tr>{rows}</table>"
            "</details>"
        )
        best = data.plan.get("best_by_gpu")
        if multi and isinstance(best, dict) and best:
            rows = "".join(
                f"<tr><td>{_e(g)}</td><td>{point(b)}</td><td>{_e(b.get('monthly_cost_usd'))}</td>"
                f"<td>{_e(b.get('monthly_cost_ci95'))}</td><td>{_e(b.get('p_meet'))}</td></tr>"
                for g, b in best.items()
                if isinstance(b, dict)
            )
            parts.append(
                "<h2>Best point per GPU type</h2><table><tr><th>GPU</th><th>point</th><th>monthly cost</th>"
                f"<th>95% CI</th><th>P(meet)</th></tr>{rows}</table>"
            )
    return "".join(parts)


def render(data: ReportData, charts: list[Chart], version: str) -> str:
    kind = "report" if data.summary else "plan" if data.plan else "breakeven" if data.breakeven else "report"
    title = f"capsim {kind}: {data.name}"
    nav = "".join(f"<a href='#{c.slug}'>{_e(c.title)}</a>" for c in charts)
    figs = "".join(
        f"<figure id='{c.slug}'><img src='{data_uri(c.png)}' alt='{_e(c.title)}: {_e(c.caption)}'>"
        f"<figcaption>{_e(c.caption)}</figcaption></figure>"
        for c in charts
    )
    table = headline(data)
    body = [
        f"<h1>{_e(data.name)}{'' if kind == 'report' else f': {kind}'}</h1>",
        f"<p class='sub'>{_e(subtitle(data))}</p>",
        cards(data),
        f"<nav>{nav}<a href='#headline'>Headline metrics</a><a href='#digest'>Experiment</a></nav>" if nav else "",
        figs,
        plan_tables(data),
    ]
    if table:
        body += ["<h2 id='headline'>Headline metrics</h2>", table]
    body += ["<h2 id='digest'>Experiment</h2>", digest(data)]
    if not charts and not table:
        body.append("<p>This folder holds no results the report can show.</p>")
    body.append(f"<footer>Generated by capsim {_e(version)}. Self-contained: no scripts, no network.</footer>")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>{''.join(body)}</main></body></html>\n"
    )


def subtitle(data: ReportData) -> str:
    d = data.digest()
    parts = []
    if d.get("seed") is not None:
        parts.append(f"seed {d['seed']}")
    if d.get("replications") is not None:
        parts.append(f"{d['replications']} replications")
    if finite(d.get("horizon_h")) is not None:
        h = f"{d['horizon_h']:g} h simulated"
        if d.get("start_weekday"):
            h += f" from 00:00 {str(d['start_weekday']).capitalize()}"
        if finite(d.get("warmup_h")):
            h += f" ({d['warmup_h']:g} h warm-up)"
        parts.append(h)
    if d.get("capsim_version"):
        parts.append(f"capsim {d['capsim_version']}")
    if d.get("created_utc"):
        parts.append(f"run {d['created_utc']}")
    return " \u00b7 ".join(parts) or str(data.folder)
