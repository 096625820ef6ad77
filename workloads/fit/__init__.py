"""`capsim fit`: a workload that reproduces a request log (docs/workloads.md, "Fitting a workload to a log").

read (workloads.log_reader) -> rates (profile, bursts, over-dispersion: workloads.fit.rates) -> classes and
sizes (workloads.fit.sizes) -> sessions and prompt sharing (workloads.fit.users) -> the experiment YAML and
size tables (workloads.fit.writer) and the fit report (sim.app.fit_report).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.core.calendar import HOUR_S
from workloads.fit.rates import RateFit, fit_rates
from workloads.fit.sizes import SizeFit, fit_sizes
from workloads.fit.users import SessionFit, SharingFit, fit_sessions, fit_sharing
from workloads.log_reader import RequestLog, read_request_log

MAX_CLASSES = 64
_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class ClassFit:
    name: str
    share: float
    requests: int
    sized: int
    input: SizeFit
    output: SizeFit
    note: str = ""


@dataclass
class LogFit:
    log: RequestLog
    rates: RateFit
    classes: list[ClassFit]
    sessions: SessionFit | None
    sharing: SharingFit | None
    horizon_h: float
    notes: list[str] = field(default_factory=list)


def class_name(label: str, taken: set[str]) -> str:
    """A valid, unique class name for a label of the log."""
    base = _NAME_RE.sub("_", label).strip("_")[:56] or "class"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _horizon_h(rates: RateFit) -> float:
    span_h = (rates.t1 - rates.t0) / HOUR_S
    if span_h >= 6 * 24:
        return 168.0
    if span_h >= 20:
        return float(min(168, 24 * math.ceil(span_h / 24.0)))
    return float(max(1, math.ceil(span_h)))


def _classes(log: RequestLog, notes: list[str]) -> list[ClassFit]:
    sized = log.sized()
    labels = log.classes if log.classes is not None else np.full(log.size, "default", dtype=object)
    keys, inverse, counts = np.unique(labels.astype(str), return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    if keys.size > MAX_CLASSES:
        notes.append(f"{keys.size} classes in the log: the {MAX_CLASSES - 1} largest kept, the rest pooled as 'other'")
    groups: list[tuple[str, np.ndarray]] = []
    for rank, k in enumerate(order):
        sel = inverse == k
        if rank < MAX_CLASSES - 1 or keys.size <= MAX_CLASSES:
            groups.append((str(keys[k]), sel))
        else:
            if groups[-1][0] != "\x00other":
                groups.append(("\x00other", np.zeros(log.size, dtype=bool)))
            groups[-1] = ("\x00other", groups[-1][1] | sel)
    if len(groups) == 1:
        only = ClassFit(
            class_name(groups[0][0], set()),
            1.0,
            log.size,
            int(sized.sum()),
            fit_sizes(log.input_tokens[sized]),
            fit_sizes(log.output_tokens[sized]),
        )
        return [only]
    all_in = fit_sizes(log.input_tokens[sized])
    all_out = fit_sizes(log.output_tokens[sized])
    taken: set[str] = set()
    out: list[ClassFit] = []
    total = float(log.size)
    for label, sel in groups:
        name = class_name("other" if label == "\x00other" else label, taken)
        both = sel & sized
        note = ""
        if both.sum() >= 2:
            fin, fout = fit_sizes(log.input_tokens[both]), fit_sizes(log.output_tokens[both])
        else:
            fin, fout = all_in, all_out
            note = "too few sized requests: sizes of the whole log"
        out.append(ClassFit(name, float(sel.sum()) / total, int(sel.sum()), int(both.sum()), fin, fout, note))
    # shares that sum to 1 exactly in 6 decimals
    shares = np.array([c.share for c in out])
    rounded = np.round(shares, 6)
    rounded[int(np.argmax(rounded))] += round(1.0 - float(rounded.sum()), 6)
    for c, s in zip(out, rounded, strict=True):
        c.share = float(s)
    return out


def fit_log(
    path: str | Path,
    fmt: str | None = None,
    columns: dict[str, str | None] | None = None,
    timezone: str = "UTC",
    session_gap_s: float = 1800.0,
) -> LogFit:
    """Read and fit a request log. Raises workloads.log_reader.LogError when nothing usable remains."""
    from workloads.log_cells import LogError

    log = read_request_log(path, fmt, columns, timezone)
    try:
        rates = fit_rates(log.local_s, log.has_calendar)
    except ValueError as exc:
        raise LogError(f"{log.path}: {exc}") from None
    notes = list(log.problems.notes) + rates.notes
    if len(log.offsets_h) > 1:
        notes.append(
            f"the zone's UTC offset changes within the log ({', '.join(f'{o:+g}' for o in log.offsets_h)} h): "
            "hours are local wall-clock hours"
        )
    classes = _classes(log, notes)
    sessions = None
    if log.users is not None:
        sessions = fit_sessions(log.local_s, log.users, log.input_tokens, log.output_tokens, session_gap_s)
    sharing = fit_sharing(log.prompt_hash, log.input_tokens) if log.prompt_hash is not None else None
    return LogFit(log, rates, classes, sessions, sharing, _horizon_h(rates), notes)
