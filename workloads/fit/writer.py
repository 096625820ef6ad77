"""The experiment YAML written by `capsim fit`, with the fit's evidence as comments, and its size tables.

Empirical size tables go beside the config as `<stem>-sizes-<class>.csv` (columns input_tokens,
output_tokens) and `<stem>-sizes-sessions.csv` (message_tokens); the config names them relative to
itself. Every file is written atomically.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from sim.core.atomic import write_text_atomic
from sim.core.calendar import HOUR_S, WEEK_S
from workloads.fit import ClassFit, LogFit
from workloads.fit.sizes import SizeFit

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _g(x: float, digits: int = 6) -> str:
    """A float as YAML, rounded to `digits` significant digits."""
    if x == 0 or not math.isfinite(x):
        return "0"
    v = float(f"{x:.{digits}g}")
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _flow(d: dict[str, Any]) -> str:
    parts = []
    for k, v in d.items():
        if isinstance(v, float):
            parts.append(f"{k}: {_g(v)}")
        elif isinstance(v, bool):
            parts.append(f"{k}: {'true' if v else 'false'}")
        elif isinstance(v, str):
            parts.append(f"{k}: {json.dumps(v)}")
        else:
            parts.append(f"{k}: {v}")
    return "{" + ", ".join(parts) + "}"


def _comment(text: str, indent: int) -> str:
    text = " ".join(text.split())
    return " " * indent + "# " + text + "\n"


def _table(path: Path, columns: dict[str, np.ndarray]) -> None:
    n = max(v.size for v in columns.values())
    header = ",".join(columns)
    rows = [header]
    cols = [np.rint(np.asarray(v, dtype=np.float64)).astype(np.int64) for v in columns.values()]
    for v in cols:
        if v.size != n:
            raise ValueError("table columns must have equal length")
    rows.extend(",".join(str(int(c[i])) for c in cols) for i in range(n))
    write_text_atomic(path, "\n".join(rows) + "\n")


def _size_spec(fit: SizeFit, file: str, column: str) -> dict[str, Any]:
    if fit.family == "empirical":
        return {"dist": "empirical", "file": file, "column": column}
    return dict(fit.spec)


def _same_table_length(a: SizeFit, b: SizeFit) -> tuple[np.ndarray, np.ndarray]:
    """Two empirical tables of one length (quantile-resampled to the longer's length)."""
    ta = a.table if a.table is not None else np.zeros(0)
    tb = b.table if b.table is not None else np.zeros(0)
    n = max(ta.size, tb.size)

    def stretch(t: np.ndarray) -> np.ndarray:
        if t.size in (0, n):
            return t if t.size else np.ones(n)
        return t[np.floor((np.arange(n) + 0.5) * t.size / n).astype(np.int64)]

    return stretch(np.sort(ta)), stretch(np.sort(tb))


def _class_block(c: ClassFit, stem: str, out_dir: Path, files: list[Path]) -> str:
    table = f"{stem}-sizes-{c.name}.csv"
    empirical = c.input.family == "empirical" or c.output.family == "empirical"
    if empirical:
        tin, tout = _same_table_length(c.input, c.output)
        _table(out_dir / table, {"input_tokens": tin, "output_tokens": tout})
        files.append(out_dir / table)
    s = f"    - name: {c.name}\n"
    s += _comment(f"{c.requests} requests ({c.share:.2%}), {c.sized} with both sizes. {c.note}", 6)
    s += f"      share: {_g(c.share)}\n"
    for role, fit in (("input", c.input), ("output", c.output)):
        s += _comment(
            f"{role}: mean {fit.mean:.4g}, sd {fit.std:.4g}, median {fit.quantiles['p50']:.4g}, "
            f"p95 {fit.quantiles['p95']:.4g}. {fit.comment()}",
            6,
        )
        s += f"      {role}_tokens: {_flow(_size_spec(fit, table, f'{role}_tokens'))}\n"
    s += "      slo_ttft_s: 2.0\n"
    return s


def _multipliers(m: np.ndarray) -> str:
    lines = []
    for d in range(7):
        vals = ", ".join(f"{v:.4f}".rstrip("0").rstrip(".") if v else "0" for v in m[d * 24 : (d + 1) * 24])
        lines.append(f"      {vals},  # {DAY_NAMES[d]}")
    body = "\n".join(lines)
    cut = body.rfind(",  #")
    body = body[:cut] + "   " + body[cut + 3 :]  # no comma after the last value
    return "    multipliers: [\n" + body + "\n    ]\n"


def _overdispersion(fit: LogFit) -> tuple[str, str]:
    r = fit.rates
    if not r.overdispersed:
        return "", (
            f"per-minute counts are Poisson within sampling error (index of dispersion {r.index_of_dispersion:.3g}, "
            f"X^2/df = {r.dispersion_x2 / max(r.dispersion_df, 1):.3g} over {r.dispersion_df} minutes): "
            "no overdispersion"
        )
    from workloads.overdispersion import cv_for_index_of_dispersion

    d, corr = r.index_of_dispersion, r.correlation_s
    try:
        cv_for_index_of_dispersion(d, r.mean_rps, 60.0, corr)
        spec = _flow({"index_of_dispersion": d, "window_s": 60.0, "correlation_s": corr})
    except ValueError:
        spec = _flow({"cv": 10.0, "correlation_s": corr})
    why = (
        f"index of dispersion of per-minute counts {d:.4g} at the mean rate (X^2/df = "
        f"{r.dispersion_x2 / max(r.dispersion_df, 1):.4g} over {r.dispersion_df} minutes); correlation time from the "
        "residuals' lag-1/lag-2 autocovariance"
    )
    return f"    overdispersion: {spec}\n", why


def _bursts(fit: LogFit) -> str:
    if not fit.rates.bursts:
        return ""
    s = "    bursts:\n"
    for i, b in enumerate(fit.rates.bursts):
        hh, mm = int(b.at_h), int(round((b.at_h % 1) * 60))
        s += _comment(
            f"{b.count:.0f} requests over the smooth curve per occurrence around {hh:02d}:{mm:02d}, "
            f"seen on {b.occurrences} day(s), z = {b.z:.1f}",
            6,
        )
        spec = {
            "name": f"burst-{i + 1}",
            "at_h": round(b.at_h, 4),
            "half_width_s": b.half_width_s,
            "count": max(int(round(b.count)), 1),
            "poisson": True,
            "days": b.days,
        }
        s += f"      - {_flow(spec)}\n"
    return s


def _sessions(fit: LogFit, stem: str, out_dir: Path, files: list[Path]) -> str:
    sf = fit.sessions
    if sf is None:
        return ""
    head = (
        f"sessions from user ids (a gap over {sf.gap_s:g} s starts a new one): {sf.users} users, {sf.sessions} "
        f"sessions, mean {sf.mean_turns:.3g} turns (p95 {sf.turns_p95:g}), think time mean {sf.think_mean_s:.4g} s "
        f"({sf.think_family}, KS D={sf.think_ks_d:.3g}); {sf.carry_share:.0%} of later turns carry the conversation"
    )
    turns = _flow({"dist": "geometric", "mean": max(sf.mean_turns, 1.0)})
    think = _flow(sf.think_spec)
    if not sf.carries_context or sf.message is None:
        return (
            _comment(head, 2)
            + _comment("prompts do not carry the conversation, so sessions stay off; to model them anyway:", 2)
            + f"  # sessions: {{turns: {turns}, think_time_s: {think}}}\n"
        )
    msg = sf.message
    if msg.family == "empirical":
        table = f"{stem}-sizes-sessions.csv"
        assert msg.table is not None
        _table(out_dir / table, {"message_tokens": msg.table})
        files.append(out_dir / table)
        mspec = _flow({"dist": "empirical", "file": table, "column": "message_tokens"})
    else:
        mspec = _flow(msg.spec)
    return (
        _comment(head, 2)
        + "  sessions:\n"
        + f"    turns: {turns}\n"
        + f"    think_time_s: {think}\n"
        + _comment(f"new message per turn: {msg.comment()}", 4)
        + f"    message_tokens: {mspec}\n"
        + f"    max_context_tokens: {sf.max_context_tokens}\n"
    )


def _cache(fit: LogFit) -> str:
    sh = fit.sharing
    if sh is None:
        return ""
    if sh.kind == "prompt":
        s = _comment(
            f"prompt hashes: {sh.repeat_share:.1%} of {sh.requests} requests repeat an earlier prompt, "
            f"{sh.distinct} distinct; Zipf exponent {sh.zipf_s if sh.zipf_s is not None else 'n/a'} "
            "(maximum likelihood over observed ranks). Set enabled: true to model an exact response cache.",
            0,
        )
        resp: dict[str, Any] = {"enabled": False, "distinct_prompts": max(sh.distinct, 1)}
        if sh.zipf_s is not None:
            resp["zipf_s"] = min(max(sh.zipf_s, 0.01), 10.0)
        return s + "cache:\n" + f"  response: {_flow(resp)}\n"
    return _comment(
        f"prefix-block hashes: {sh.repeat_share:.1%} of prompt blocks and {sh.token_share:.1%} of prompt tokens "
        "were seen earlier in the log (an unbounded prefix cache's hit ratio). A fitted workload has no block "
        "hashes of its own except through sessions; replay the log (kind: trace) with cache.prefix to use them.",
        0,
    )


def experiment_yaml(fit: LogFit, out: Path) -> tuple[str, list[Path]]:
    """The config text and the table files written beside it."""
    out_dir = out.parent
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", out.stem) or "fit"
    files: list[Path] = []
    log, r = fit.log, fit.rates
    peak_h, ptm = r.diurnal_summary()
    burst_rps = sum(b.count * _burst_days_per_week(b.days) for b in r.bursts) / (WEEK_S)
    problems = log.problems.summary(log.unit)
    head = [
        f"Fitted by capsim fit from {Path(log.path).name}: {log.size} requests of {log.rows_read} rows read, over "
        f"{(r.t1 - r.t0) / HOUR_S:.4g} h"
        + (f" (local time {log.timezone})" if log.has_calendar else " (relative times)"),
        "columns: " + ", ".join(f"{k}={v}" for k, v in log.columns.items()),
    ]
    head += [f"problem: {p}" for p in problems] + [f"note: {n}" for n in fit.notes]
    head.append("fit report: fit-report.html beside this file")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"fit-{Path(log.path).stem}")[:100]
    text = "".join(_comment(h, 0) for h in head)
    text += f"name: {name}\nseed: 0\nreplications: 5\nhorizon_h: {_g(fit.horizon_h)}\nwarmup_h: 0\n"
    text += f"start_weekday: {r.start_weekday}\n\nworkload:\n  arrivals:\n    kind: hourly\n"
    text += _comment(
        f"the week's mean rate of the smooth curve; bursts add {burst_rps:.4g} req/s on average "
        f"(total {r.mean_rps + burst_rps:.4g} req/s)",
        4,
    )
    text += f"    mean_rps: {_g(r.mean_rps)}\n"
    f = r.day_factors()
    text += _comment(
        f"diurnal summary: the mean weekday peaks at {int(peak_h):02d}:00 at {ptm:.3g} x its mean; weekend factor "
        f"{r.weekend_factor():.3g}; day factors mon..sun [{', '.join(f'{x:.3g}' for x in f)}]",
        4,
    )
    text += f"    peak_hour: {int(peak_h)}\n"
    if log.has_calendar:
        text += _comment(f"the clock is local time in {log.timezone}", 4)
        text += f"    utc_offset_h: {_g(log.utc_offset_h)}\n"
    seen = int(np.count_nonzero(r.exposure_h > 0))
    text += _comment(
        f"168 hour-of-week multipliers (local, Monday 00:00 first), mean 1; {seen} of 168 hours seen in the log, "
        f"the rest from the pooled hour-of-day profile; thin hours shrunk towards it ({10:g} pseudo-requests)",
        4,
    )
    text += _multipliers(r.multipliers)
    od, why = _overdispersion(fit)
    text += _comment(why, 4) + od
    text += _bursts(fit)
    text += "  classes:\n"
    for c in fit.classes:
        text += _class_block(c, stem, out_dir, files)
    text += _sessions(fit, stem, out_dir, files)
    text += "\n" + _cache(fit)
    text += (
        "\n# backends, routing and costs: capsim's defaults (docs/config.md); size the pool for this workload with\n"
        f"# capsim plan {out.name} --vary backends.gpu_pool.servers=1..64\n"
    )
    return text, files


def _burst_days_per_week(days: str) -> int:
    return {"weekdays": 5, "weekends": 2}.get(days, 7)


def write_experiment(fit: LogFit, out: Path) -> list[Path]:
    """Write the config (and its tables); returns every file written."""
    text, files = experiment_yaml(fit, out)
    write_text_atomic(out, text)
    return [out, *files]
