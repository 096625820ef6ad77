"""The report of a sweep folder (`sweep.json` at its top): one row per point, and each target metric
charted against the swept values (mean and 95% interval, the target drawn), one line per value of the
other swept keys. Self-contained like the run report (sim.report.page)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from sim.report.page import CSS, Chart, data_uri, fmt_metric

SWEEP_FILE = "sweep.json"
DEFAULT_METRICS = ("peak_ttft_p95_s", "ttft_p95_s", "availability", "gpu_capacity_utilization", "monthly_cost_usd")


def is_sweep_folder(folder: Path) -> bool:
    return (Path(folder) / SWEEP_FILE).is_file()


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _targets(doc: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(metric, op, value) of the plan targets the points were judged by."""
    for p in doc.get("points", []):
        items = (p.get("targets") or {}).get("items") or []
        if items:
            return [(i["metric"], i["op"], float(i["value"])) for i in items]
    return []


def chart_metrics(doc: dict[str, Any]) -> list[str]:
    """The target metrics first, then a few headline metrics (cost, capacity used)."""
    names = [m for m, _, _ in _targets(doc)]
    for m in DEFAULT_METRICS:
        if m not in names:
            names.append(m)
    have = {m for p in doc.get("points", []) for m, s in (p.get("metrics") or {}).items() if s.get("mean") is not None}
    return [m for m in dict.fromkeys(names) if m in have]


def _x_values(doc: dict[str, Any], key: str) -> tuple[list[Any], bool]:
    values = [p["values"][key] for p in doc["points"]]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return values, numeric


def metric_chart(doc: dict[str, Any], metric: str) -> bytes | None:
    """The metric's mean with its 95% interval against the first swept key; a line per other-key combination."""
    from matplotlib.ticker import FuncFormatter

    from sim.report.style import INK, RED, SERIES, new_figure, rc, to_png

    keys = doc["keys"]
    x_key = keys[0]
    values, numeric = _x_values(doc, x_key)
    order = list(dict.fromkeys(values))
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for p in doc["points"]:
        groups.setdefault(tuple(p["values"][k] for k in keys[1:]), []).append(p)
    with rc():
        fig = new_figure(3.4, 5.4)
        ax = fig.subplots()
        drawn = False
        for gi, (rest, pts) in enumerate(groups.items()):
            xs, ys, lo, hi = [], [], [], []
            for p in pts:
                s = p["metrics"].get(metric) or {}
                if s.get("mean") is None:
                    continue
                xv = p["values"][x_key]
                xs.append(float(xv) if numeric else float(order.index(xv)))
                ys.append(float(s["mean"]))
                lo.append(float(s["ci95_low"]) if s.get("ci95_low") is not None else float(s["mean"]))
                hi.append(float(s["ci95_high"]) if s.get("ci95_high") is not None else float(s["mean"]))
            if not xs:
                continue
            y = np.array(ys)
            err = np.vstack([y - np.array(lo), np.array(hi) - y]).clip(min=0)
            label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys[1:], rest, strict=True)) or None
            color = SERIES[gi % len(SERIES)]
            ax.errorbar(xs, y, yerr=err, color=color, marker="o", ms=4, lw=1.6, capsize=3, label=label)
            drawn = True
        if not drawn:
            return None
        for m, op, v in _targets(doc):
            if m == metric:
                ax.axhline(v, color=RED, ls="--", lw=1.6, label=f"target {op} {fmt_metric(metric, v)}")
        if not numeric:
            ax.set_xticks(range(len(order)), [str(v) for v in order])
        elif len(order) <= 12:
            ax.set_xticks([float(v) for v in order], [f"{v:g}" for v in order])
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_metric(metric, v)))
        ax.set_xlabel(x_key)
        ax.set_title(f"{metric} (mean, 95% CI)", fontsize=11, color=INK)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8.5)
        return to_png(fig)


def _table(doc: dict[str, Any], metrics: list[str]) -> str:
    keys = doc["keys"]
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    head += "".join(f"<th>{_e(m)}</th>" for m in metrics) + "<th>P(meet all targets)</th><th>decision</th>"
    rows = []
    for p in doc["points"]:
        link = f"{p['folder']}/report.html"
        cells = "".join(
            f"<td><a href='{_e(link)}' title='this point&#39;s report'>{_e(p['values'][k])}</a></td>"
            if i == 0
            else f"<td>{_e(p['values'][k])}</td>"
            for i, k in enumerate(keys)
        )
        for m in metrics:
            s = p["metrics"].get(m) or {}
            ci = (
                f"<br><small>{fmt_metric(m, s['ci95_low'])} - {fmt_metric(m, s['ci95_high'])}</small>"
                if s.get("ci95_low") is not None
                else ""
            )
            cells += f"<td>{fmt_metric(m, s.get('mean'))}{ci}</td>"
        ta = (p.get("targets") or {}).get("all")
        if ta:
            decision = ta.get("decision", ta["verdict"]) + (" (bound)" if ta.get("decided_by") == "tolerance" else "")
            cells += f"<td>{ta['met']}/{ta['n']}</td><td>{_e(decision)}</td>"
        else:
            cells += "<td>-</td><td>-</td>"
        rows.append(f"<tr>{cells}</tr>")
    return f"<div style='overflow-x:auto'><table><tr>{head}</tr>{''.join(rows)}</table></div>"


def render(doc: dict[str, Any], charts: list[Chart], config_text: str | None, version: str) -> str:
    keys = ", ".join(doc["keys"])
    title = f"capsim sweep: {doc['name']}"
    metrics = chart_metrics(doc)
    targets = ", ".join(f"{m} {op} {v:g}" for m, op, v in _targets(doc))
    sub = (
        f"sweep of {keys} · {len(doc['points'])} points · {doc['replications']} replications each, seed "
        f"{doc['seed']} (common random numbers across points)"
    )
    figs = "".join(
        f"<figure style='display:inline-block;box-sizing:border-box;width:49%;margin:0.5% 0.4%;vertical-align:top' "
        f"id='{c.slug}'>"
        f"<img src='{data_uri(c.png)}' alt='{_e(c.title)}'><figcaption>{_e(c.caption)}</figcaption></figure>"
        for c in charts
    )
    body = [
        f"<h1>{_e(doc['name'])}: sweep</h1>",
        f"<p class='sub'>{_e(sub)}</p>",
        f"<p>Targets: {_e(targets)}</p>" if targets else "",
        "<h2 id='points'>One row per point</h2>",
        _table(doc, metrics),
        "<p class='sub'>Mean over replications with the Student-t 95% interval of the mean; P(meet): the "
        "replications that met every target; decision: by counting (Wilson interval against the required "
        "confidence), else (bound) by the metric's normal tolerance bound (docs/planning.md). Each swept value "
        "links to that point's own report.</p>",
        "<h2 id='charts'>Each metric against the swept values</h2>",
        figs,
        "<h2 id='digest'>Experiment</h2>",
        f"<details><summary>Base config (config.yaml)</summary><pre>{_e(config_text)}</pre></details>"
        if config_text
        else "",
        f"<footer>Generated by capsim {_e(version)}. Self-contained: no scripts, no network.</footer>",
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>{''.join(body)}</main></body></html>\n"
    )


def write_sweep_report(folder: Path) -> Path:
    """Build report.html (and plots/sweep_<metric>.png) at the top of a sweep folder."""
    from sim.core.atomic import write_bytes_atomic, write_text_atomic
    from sim.core.version import __version__

    folder = Path(folder)
    doc = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
    charts = []
    for m in chart_metrics(doc):
        png = metric_chart(doc, m)
        if png:
            charts.append(Chart(f"sweep_{m}", m, f"{m} against {doc['keys'][0]}: mean and 95% interval", png))
    for c in charts:
        write_bytes_atomic(folder / "plots" / f"{c.slug}.png", c.png)
    cfg = folder / "config.yaml"
    text = cfg.read_text(encoding="utf-8") if cfg.is_file() else None
    path = folder / "report.html"
    write_text_atomic(path, render(doc, charts, text, __version__))
    return path
