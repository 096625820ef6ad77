"""Serving-benchmark results as `capsim calibrate` reads them: vLLM `bench serve --save-result` JSON files,
or CSV files with the same columns (one row per benchmark run).

Columns (JSON keys): `request_rate` (req/s; `inf` for all prompts at once), `completed`, `duration` (s),
`total_input_tokens`, `total_output_tokens`, and any of `mean_ttft_ms`, `median_ttft_ms`, `mean_tpot_ms`,
`median_tpot_ms`, `mean_itl_ms`, `median_itl_ms`. vLLM's JSON may also carry per-request `input_lens` and
`output_lens` (then the fit replays exactly those lengths) and `max_concurrency` (a closed-loop run; not
replayed, refused). Optional extension: `lengths` (`constant` | `sharegpt`), the shape of the lengths when a
file gives only their totals; the command's `--lengths` is the default. A CSV may carry `#` comment lines
(where the numbers come from); they are kept in the profile's provenance.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIRED = ("request_rate", "completed", "total_input_tokens", "total_output_tokens")
LATENCIES = ("mean_ttft_ms", "median_ttft_ms", "mean_tpot_ms", "median_tpot_ms", "mean_itl_ms", "median_itl_ms")
LENGTH_SHAPES = ("constant", "sharegpt")


class BenchFileError(ValueError):
    """A result file capsim cannot use, with the file (and row) named."""


@dataclass(frozen=True)
class BenchPoint:
    """One benchmark run: its request rate, what completed and what was measured."""

    source: str  # file name, and row for a CSV
    request_rate: float  # req/s; math.inf: all prompts sent at t = 0
    completed: int
    duration_s: float | None
    input_mean: float
    output_mean: float
    measured: dict[str, float]  # LATENCIES present, in ms
    lengths: str | None  # constant | sharegpt | None (the command's default)
    input_lens: tuple[int, ...] | None = None  # per request, when the file has them
    output_lens: tuple[int, ...] | None = None

    @property
    def throughput_rps(self) -> float | None:
        return self.completed / self.duration_s if self.duration_s else None

    @property
    def label(self) -> str:
        rate = "inf" if math.isinf(self.request_rate) else f"{self.request_rate:g}"
        return f"{self.source} @ {rate} req/s"


@dataclass(frozen=True)
class BenchFile:
    path: Path
    sha256: str
    points: list[BenchPoint]
    notes: list[str] = field(default_factory=list)  # a CSV's comment lines


def _number(v: Any, key: str, where: str, *, allow_inf: bool = False) -> float:
    if isinstance(v, str):
        v = v.strip()
        if allow_inf and v.lower() in ("inf", "infinity"):
            return math.inf
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise BenchFileError(f"{where}: {key} must be a number, got {v!r}") from None
    if math.isnan(x) or (math.isinf(x) and not allow_inf):
        raise BenchFileError(f"{where}: {key} must be a finite number, got {v!r}")
    return x


def point_from_record(rec: dict[str, Any], where: str) -> BenchPoint:
    """One BenchPoint from a JSON object or a CSV row (empty cells are missing values)."""
    rec = {k.strip(): v for k, v in rec.items() if k is not None and v is not None and v != ""}
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        raise BenchFileError(f"{where}: missing {', '.join(missing)} (a vLLM `bench serve --save-result` file?)")
    if rec.get("max_concurrency") not in (None, "None", "null"):
        raise BenchFileError(f"{where}: max_concurrency runs (closed loop) are not replayed; use request-rate runs")
    rate = _number(rec["request_rate"], "request_rate", where, allow_inf=True)
    completed = _number(rec["completed"], "completed", where)
    if rate <= 0 or completed < 1 or completed != int(completed):
        raise BenchFileError(f"{where}: request_rate must be > 0 and completed a whole number >= 1")
    tin = _number(rec["total_input_tokens"], "total_input_tokens", where)
    tout = _number(rec["total_output_tokens"], "total_output_tokens", where)
    if tin < completed or tout < completed:
        raise BenchFileError(f"{where}: total tokens must be at least one per completed request")
    duration = _number(rec["duration"], "duration", where) if "duration" in rec else None
    if duration is not None and duration <= 0:
        raise BenchFileError(f"{where}: duration must be > 0")
    measured = {k: _number(rec[k], k, where) for k in LATENCIES if k in rec}
    if any(v <= 0 for v in measured.values()):
        raise BenchFileError(f"{where}: latencies must be > 0 ms")
    if not measured and duration is None:
        raise BenchFileError(f"{where}: nothing to fit: no duration and none of {', '.join(LATENCIES)}")
    lengths = rec.get("lengths")
    if lengths is not None and lengths not in LENGTH_SHAPES:
        raise BenchFileError(f"{where}: lengths must be one of {', '.join(LENGTH_SHAPES)}, got {lengths!r}")
    ins = outs = None
    if isinstance(rec.get("input_lens"), list) and isinstance(rec.get("output_lens"), list):
        pairs = [(int(i), int(o)) for i, o in zip(rec["input_lens"], rec["output_lens"], strict=False) if int(o) > 0]
        if pairs:  # failed requests carry output length 0 in vLLM's file
            ins = tuple(max(1, i) for i, _ in pairs)
            outs = tuple(o for _, o in pairs)
    return BenchPoint(
        source=where,
        request_rate=rate,
        completed=int(completed),
        duration_s=duration,
        input_mean=tin / completed,
        output_mean=tout / completed,
        measured=measured,
        lengths=lengths,
        input_lens=ins,
        output_lens=outs,
    )


def read_bench_file(path: Path) -> BenchFile:
    """A JSON result (one object, or a list of them) or a CSV (one run per row)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BenchFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    digest = hashlib.sha256(raw).hexdigest()
    text = raw.decode("utf-8", errors="replace")
    name = path.name
    if path.suffix.lower() == ".csv":
        import csv
        import io

        lines = text.splitlines()
        notes = [ln.lstrip("#").strip() for ln in lines if ln.lstrip().startswith("#")]
        body = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        rows = list(csv.DictReader(io.StringIO("\n".join(body))))
        if not rows:
            raise BenchFileError(f"{path}: no rows (expected a header line and one row per benchmark run)")
        # the first non-comment line is the header: data rows start on the line after it
        points = [point_from_record(dict(r), f"{name} row {i + 1}") for i, r in enumerate(rows)]
        return BenchFile(path, digest, points, notes)
    try:
        doc = json.loads(text)  # Python's json reads vLLM's Infinity as well as "inf"
    except ValueError as exc:
        raise BenchFileError(f"{path}: not JSON or CSV ({exc})") from None
    docs = doc if isinstance(doc, list) else [doc]
    if not docs or not all(isinstance(d, dict) for d in docs):
        raise BenchFileError(f"{path}: expected a JSON object (vLLM `bench serve --save-result`) or a list of them")
    where = [name] if len(docs) == 1 else [f"{name} [{i}]" for i in range(len(docs))]
    return BenchFile(path, digest, [point_from_record(d, w) for d, w in zip(docs, where, strict=True)])
