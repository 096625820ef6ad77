"""`fit-report.html`: what `capsim fit` read, what it fitted and how close the fit comes to the log.

Same page style as the run report (sim.report.page): self-contained, charts inlined as PNG. Panels:

* the week: observed requests per hour of the week (per hour of exposure) against the fitted model's
  expectation (curve + bursts), with Pearson's X^2 over the hours seen and the relative RMS error;
* sizes: per class, the empirical CDF of input and output tokens against the fitted law, with the KS
  distance and p-value the choice was made on;
* dispersion: the variance of per-minute counts against their fitted mean (minutes binned by mean), the
  Poisson line and the fitted model's mu (1 + (D - 1) mu / mu_bar), with X^2 / df.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from sim.core.atomic import write_text_atomic
from sim.core.calendar import DAY_S, HOUR_S
from sim.report.page import CSS, data_uri
from sim.report.style import BLUE, GREY, ORANGE, RED, new_figure, rc, to_png
from workloads.fit import LogFit
from workloads.fit.rates import WEEK_H, hour_of_week
from workloads.fit.sizes import size_cdf

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def week_statistics(fit: LogFit) -> dict[str, float]:
    """Observed vs fitted requests per hour of the week over the hours seen: Pearson X^2 (variance =
    mean x the fitted index of dispersion), its degrees of freedom, relative RMS and max errors."""
    obs, expect, exposure = week_series(fit)
    seen = exposure > 0.5
    o, e = obs[seen], expect[seen]
    d = max(fit.rates.index_of_dispersion, 1.0)
    x2 = float(np.sum((o - e) ** 2 / np.maximum(e * d, 1e-12)))
    rel = (o - e) / np.maximum(e, 1e-12)
    return {
        "x2": x2,
        "df": float(seen.sum()),
        "rel_rms": float(np.sqrt(np.mean(rel**2))) if rel.size else 0.0,
        "rel_max": float(np.max(np.abs(rel))) if rel.size else 0.0,
    }


def week_series(fit: LogFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(observed requests, fitted expectation, exposure hours) per hour of the week, bursts included."""
    r = fit.rates
    t = fit.log.local_s if r.has_calendar else fit.log.local_s - fit.log.local_s[0] + 4 * DAY_S
    obs = np.bincount(hour_of_week(t), minlength=WEEK_H).astype(np.float64)
    expect = r.hourly_rate() * r.exposure_h
    for b in r.bursts:
        for slot, occurrences in b.occurrences_by_slot.items():
            expect[slot] += b.count * occurrences
    return obs, expect, r.exposure_h


def _week_chart(fit: LogFit) -> bytes:
    obs, expect, exposure = week_series(fit)
    seen = exposure > 0
    fig = new_figure(3.8)
    with rc():
        ax = fig.add_subplot(1, 1, 1)
        x = np.arange(WEEK_H)
        rate_obs = np.where(seen, obs / np.maximum(exposure, 1e-12), np.nan) / HOUR_S
        rate_fit = np.where(seen, expect / np.maximum(exposure, 1e-12), np.nan) / HOUR_S
        ax.step(x, fit.rates.hourly_rate() / HOUR_S, where="post", color=GREY, lw=1.0, label="fitted curve (all hours)")
        ax.plot(x + 0.5, rate_obs, "o", ms=2.6, color=BLUE, label="observed")
        ax.step(x, rate_fit, where="post", color=ORANGE, lw=1.4, label="fitted (curve + bursts), hours seen")
        ax.set_xticks(np.arange(0, WEEK_H + 1, 24), [*DAYS, ""])
        ax.set_xlim(0, WEEK_H)
        ax.set_ylabel("requests/s")
        ax.set_title("Requests per hour of the week (local time)")
        ax.legend(loc="upper right")
    return to_png(fig)


def _sizes_chart(fit: LogFit) -> bytes:
    classes = fit.classes[:6]
    fig = new_figure(2.8 * len(classes))
    log = fit.log
    labels = log.classes
    with rc():
        for i, c in enumerate(classes):
            for j, (role, sf, col) in enumerate(
                (("input", c.input, log.input_tokens), ("output", c.output, log.output_tokens))
            ):
                ax = fig.add_subplot(len(classes), 2, 2 * i + j + 1)
                sel = np.isfinite(log.input_tokens) & np.isfinite(log.output_tokens)
                if labels is not None and len(fit.classes) > 1:
                    sel &= np.array([_matches(lbl, c.name) for lbl in labels], dtype=bool)
                x = np.sort(np.maximum(col[sel], 1.0))
                if x.size == 0:
                    continue
                ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", color=BLUE, lw=1.6, label="observed")
                grid = np.unique(np.geomspace(1.0, max(float(x[-1]), 2.0), 400).round())
                ax.plot(grid, size_cdf(sf, grid), color=ORANGE, lw=1.2, ls="--", label=f"fitted ({sf.family})")
                ax.set_xscale("log")
                ax.set_ylim(0, 1)
                ax.set_title(f"{c.name}: {role} tokens (KS D={sf.ks_d:.3g}, p={sf.ks_p:.2g})", fontsize=10.5)
                ax.legend(loc="lower right")
    return to_png(fig)


def _matches(label: Any, name: str) -> bool:
    from workloads.fit import _NAME_RE

    return (_NAME_RE.sub("_", str(label)).strip("_")[:56] or "class") == name


def _dispersion_chart(fit: LogFit) -> bytes | None:
    r = fit.rates
    if r.minute_counts is None or r.minute_means is None:
        return None
    keep = ~r.minute_in_burst if r.minute_in_burst is not None else np.ones(r.minute_counts.size, dtype=bool)
    n, mu = r.minute_counts[keep], r.minute_means[keep]
    ok = mu > 0
    n, mu = n[ok], mu[ok]
    if mu.size < 30:
        return None
    edges = np.unique(np.quantile(mu, np.linspace(0, 1, 13)))
    which = np.clip(np.searchsorted(edges, mu, side="right") - 1, 0, max(edges.size - 2, 0))
    xs, vs = [], []
    for k in range(max(edges.size - 1, 1)):
        s = which == k
        if s.sum() >= 5:
            xs.append(float(mu[s].mean()))
            vs.append(float(np.mean((n[s] - mu[s]) ** 2)))
    fig = new_figure(3.4)
    with rc():
        ax = fig.add_subplot(1, 1, 1)
        xs_a = np.array(xs)
        ax.plot(xs_a, vs, "o", color=BLUE, label="observed variance of per-minute counts")
        grid = np.linspace(0, float(mu.max()) * 1.05, 100)
        ax.plot(grid, grid, color=GREY, lw=1, label="Poisson (variance = mean)")
        mbar = float(mu.mean())
        model = grid * (1 + (r.index_of_dispersion - 1) * grid / mbar) if r.overdispersed else grid
        ax.plot(grid, model, color=RED, lw=1.4, ls="--", label=f"fitted (D = {r.index_of_dispersion:.3g} at the mean)")
        ax.set_xlabel("fitted mean requests per minute")
        ax.set_ylabel("variance")
        ax.set_title("Burstiness: per-minute variance against the mean")
        ax.legend(loc="upper left")
    return to_png(fig)


def _figure(title: str, png: bytes, caption: str) -> str:
    return (
        f'<figure><img alt="{_e(title)}" src="{data_uri(png)}">'
        f"<figcaption><b>{_e(title)}.</b> {_e(caption)}</figcaption></figure>"
    )


def fit_report_html(fit: LogFit, exp: Any) -> str:
    log, r = fit.log, fit.rates
    ws = week_statistics(fit)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>capsim fit: {_e(Path(log.path).name)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>Fit of {_e(Path(log.path).name)}</h1>",
        f"<p class='sub'>{log.size} requests of {log.rows_read} rows, {(r.t1 - r.t0) / HOUR_S:.4g} h, "
        f"{'local time ' + _e(log.timezone) if log.has_calendar else 'relative times'}; written config "
        f"<code>{_e(exp.name)}</code>: {exp.horizon_h:g} h from {exp.start_weekday}.</p>",
        "<dl class='digest'>",
        f"<dt>mean rate</dt><dd>{r.mean_rps:.4g} req/s (smooth curve) + {len(r.bursts)} burst(s)</dd>",
        f"<dt>hourly fit</dt><dd>X<sup>2</sup> = {ws['x2']:.4g} over {ws['df']:g} hours seen; relative RMS error "
        f"{ws['rel_rms']:.2%}, largest {ws['rel_max']:.2%}</dd>",
        f"<dt>dispersion</dt><dd>index {r.index_of_dispersion:.4g} per minute at the mean rate, X<sup>2</sup>/df = "
        f"{r.dispersion_x2 / max(r.dispersion_df, 1):.4g} ({'over-dispersed' if r.overdispersed else 'Poisson'})</dd>",
        f"<dt>columns</dt><dd>{_e(', '.join(f'{k}={v}' for k, v in log.columns.items()))}</dd>",
        "</dl>",
    ]
    parts.append(
        _figure(
            "The week",
            _week_chart(fit),
            "Blue: requests per second observed in each hour of the week (count / hours of the log in that hour). "
            "Orange: the fitted model's expectation there (curve + bursts). Grey: the fitted curve over the whole "
            f"week (hours not in the log come from the pooled profile). X^2 = {ws['x2']:.4g} on {ws['df']:g} hours "
            "(variance = mean x the fitted dispersion index).",
        )
    )
    parts.append(
        _figure(
            "Sizes",
            _sizes_chart(fit),
            "Empirical CDF of each class's tokens (blue) against the fitted law (dashed); the statistic is the "
            "KS distance to the law as the simulator draws it (rounded, at least 1).",
        )
    )
    disp = _dispersion_chart(fit)
    if disp is not None:
        parts.append(
            _figure(
                "Dispersion",
                disp,
                "Minutes binned by their fitted mean (burst windows left out). Poisson counts lie on the grey line. "
                f"X^2/df = {r.dispersion_x2 / max(r.dispersion_df, 1):.4g} over {r.dispersion_df} minutes; "
                f"correlation time {r.correlation_s:.4g} s.",
            )
        )
    rows = "".join(
        f"<tr><td>{_e(c.name)}</td><td>{c.share:.2%}</td><td>{c.requests}</td><td>{_e(c.input.family)} "
        f"(D {c.input.ks_d:.3g})</td><td>{c.input.mean:.4g}</td><td>{_e(c.output.family)} (D {c.output.ks_d:.3g})"
        f"</td><td>{c.output.mean:.4g}</td></tr>"
        for c in fit.classes
    )
    parts.append(
        "<h2>Classes</h2><table><tr><th>class</th><th>share</th><th>requests</th><th>input law</th>"
        f"<th>input mean</th><th>output law</th><th>output mean</th></tr>{rows}</table>"
    )
    if r.bursts:
        brow = "".join(
            f"<tr><td>{b.at_h:.3g} h</td><td>{b.half_width_s:g} s</td><td>{b.count:.4g}</td><td>{b.days}</td>"
            f"<td>{b.occurrences}</td><td>{b.z:.3g}</td></tr>"
            for b in r.bursts
        )
        parts.append(
            "<h2>Bursts</h2><table><tr><th>centre</th><th>half width</th><th>requests over the curve</th>"
            f"<th>days</th><th>seen</th><th>z</th></tr>{brow}</table>"
        )
    if fit.sessions is not None:
        s = fit.sessions
        parts.append(
            f"<h2>Sessions</h2><p>{s.users} users, {s.sessions} sessions, mean {s.mean_turns:.3g} turns, think time "
            f"mean {s.think_mean_s:.4g} s ({_e(s.think_family)}); {s.carry_share:.0%} of later turns carry the "
            f"conversation: sessions {'on' if s.carries_context else 'off'}.</p>"
        )
    if fit.sharing is not None:
        sh = fit.sharing
        parts.append(
            f"<h2>Prompt sharing</h2><p>{_e(sh.kind)} hashes: {sh.repeat_share:.1%} repeat, {sh.token_share:.1%} of "
            f"prompt tokens, {sh.distinct} distinct.</p>"
        )
    probs = log.problems.summary(log.unit)
    items = "".join(f"<li>{_e(p)}</li>" for p in probs + [f"note: {n}" for n in fit.notes])
    parts.append(f"<h2>What the reader found</h2><ul>{items or '<li>no problems</li>'}</ul>")
    parts.append("<footer>capsim fit</footer></main></body></html>")
    return "".join(parts)


def write_fit_report(fit: LogFit, exp: Any, path: Path) -> Path:
    write_text_atomic(path, fit_report_html(fit, exp))
    return path
