"""Trace replay (`kind: trace`): the requests of a real trace at their recorded times and sizes.

Formats (`format: auto` picks mooncake for .jsonl/.ndjson, azure otherwise):

* ``azure``: CSV with a time column (`time_column`, default TIMESTAMP: date-time strings such as
  ``2023-11-16 18:15:46.6805900``, or plain numbers taken as seconds) and token columns (`input_column`,
  `output_column`, default ContextTokens / GeneratedTokens), as in Azure/AzurePublicDataset.
* ``mooncake``: JSON lines with ``timestamp`` (milliseconds), ``input_length``, ``output_length`` and
  ``hash_ids`` (one id per 512-token prompt block; equal leading ids mean a shared prefix), as in
  kvcache-ai/Mooncake. Columns other than the Azure defaults in the config rename the first three.

Time starts at the first request (t = 0 at the clock's 00:00 of start_weekday); rows are stably sorted by
time. `speed` compresses time (t / speed: 2 plays the trace twice as fast). `loop` repeats it with period
(duration * n / (n - 1)) / speed (one mean gap after the last request), for as long as the horizon lasts;
without it, the replay ends with the trace. The token columns replace the classes' size distributions;
classes are still assigned by share (generator). Requests at or after the horizon are not replayed.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.config import Experiment
from sim.config.workload import ArrivalsSpec
from workloads.files import data_error, no_column, resolve_data_file
from workloads.ragged import ragged_gather

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MOONCAKE_COLUMNS = ("timestamp", "input_length", "output_length")
_JSONL = (".jsonl", ".ndjson")


@dataclass(frozen=True, eq=False)
class Trace:
    times: np.ndarray  # float64 seconds since the first request, sorted
    input_tokens: np.ndarray  # int64
    output_tokens: np.ndarray  # int64
    hash_ids: np.ndarray | None = None  # int64, flat
    hash_offsets: np.ndarray | None = None  # int64, n + 1

    @property
    def size(self) -> int:
        return int(self.times.size)

    @property
    def duration_s(self) -> float:
        return float(self.times[-1] - self.times[0]) if self.size else 0.0


def trace_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    return "mooncake" if path.name.lower().endswith(_JSONL) else "azure"


def _int_column(values: pd.Series, path: Path, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        raise ValueError(f"{path}: column {name!r} is not numeric")
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(arr).all() or (arr < 0).any() or (arr != np.floor(arr)).any():
        raise ValueError(f"{path}: column {name!r} must hold whole numbers >= 0")
    return arr.astype(np.int64)


def _seconds(values: pd.Series, path: Path, name: str, unit_s: float) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        t = values.to_numpy(dtype=np.float64, na_value=np.nan) * unit_s
    else:
        try:
            stamps = pd.to_datetime(values, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{path}: column {name!r} holds neither numbers nor date-times ({type(exc).__name__})"
            ) from None
        ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        if (stamps.isna()).any():
            raise ValueError(f"{path}: column {name!r} has a missing time")
        t = (ns - ns.min()).astype(np.float64) * 1e-9
    if not np.isfinite(t).all():
        raise ValueError(f"{path}: column {name!r} has a missing or non-finite time")
    return t


def _finish(t: np.ndarray, tin: np.ndarray, tout: np.ndarray, hashes: list[list[int]] | None) -> Trace:
    if t.size == 0:
        raise ValueError("the trace has no requests")
    order = np.argsort(t, kind="stable")
    t = t[order] - t[order][0]
    ids = offs = None
    if hashes is not None:
        lengths = np.array([len(hashes[i]) for i in order], dtype=np.int64)
        offs = np.zeros(t.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offs[1:])
        ids = np.fromiter((h for i in order for h in hashes[i]), dtype=np.int64, count=int(offs[-1]))
        ids.setflags(write=False)
        offs.setflags(write=False)
    tin, tout = tin[order], tout[order]
    for a in (t, tin, tout):
        a.setflags(write=False)
    return Trace(t, tin, tout, ids, offs)


def _read_azure(path: Path, cols: tuple[str, str, str]) -> Trace:
    try:
        header = pd.read_csv(path, nrows=0)
        missing = [c for c in cols if c not in header.columns]
        if missing:
            raise no_column(path, missing[0], len(header.columns))
        frame = pd.read_csv(path, usecols=list(cols))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise data_error(path, "CSV", exc) from None
    t = _seconds(frame[cols[0]], path, cols[0], 1.0)
    return _finish(t, _int_column(frame[cols[1]], path, cols[1]), _int_column(frame[cols[2]], path, cols[2]), None)


def _lines(fh: Any, path: Path) -> Any:
    """(line number, line) of a text file; bytes that are not UTF-8 are reported by line, not shown."""
    lineno = 0
    try:
        for lineno, line in enumerate(fh, 1):  # noqa: B007 - lineno is read after the loop on an error
            yield lineno, line
    except UnicodeDecodeError:
        raise ValueError(f"{path}: line {lineno + 1} is not UTF-8 text") from None


def _read_mooncake(path: Path, cols: tuple[str, str, str]) -> Trace:
    rows: list[dict[str, object]] = []
    with path.open("r", encoding="utf-8", errors="strict") as fh:
        for lineno, line in _lines(fh, path):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {lineno} is not JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{path}: line {lineno} is not a JSON object")
            rows.append(rec)
    if not rows:
        raise ValueError(f"{path}: the trace has no requests")
    frame = pd.DataFrame.from_records(rows)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise no_column(path, missing[0], len(frame.columns), kind="field")
    t = _seconds(frame[cols[0]], path, cols[0], 1e-3)
    hashes: list[list[int]] | None = None
    if "hash_ids" in frame.columns:
        hashes = []
        for i, h in enumerate(frame["hash_ids"]):
            if not isinstance(h, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in h):
                raise ValueError(f"{path}: hash_ids of request {i + 1} is not a list of integers")
            if any(not -(2**63) <= x < 2**63 for x in h):
                raise ValueError(f"{path}: hash_ids of request {i + 1} holds an id outside 64-bit integers")
            hashes.append(h)
    return _finish(t, _int_column(frame[cols[1]], path, cols[1]), _int_column(frame[cols[2]], path, cols[2]), hashes)


@functools.lru_cache(maxsize=16)
def _load_cached(path_str: str, fmt: str, cols: tuple[str, str, str], mtime_ns: int) -> Trace:
    del mtime_ns  # part of the cache key only
    path = Path(path_str)
    return _read_mooncake(path, cols) if fmt == "mooncake" else _read_azure(path, cols)


def load_trace(spec: ArrivalsSpec, base_dir: Path | None = None) -> Trace:
    """Read (once per file version) the trace a `kind: trace` spec points at."""
    if not spec.file:
        raise ValueError("kind 'trace' needs a file")
    path = resolve_data_file(spec.file, base_dir).resolve()
    fmt = trace_format(path, spec.format)
    cols = (spec.time_column, spec.input_column, spec.output_column)
    if fmt == "mooncake":
        cols = tuple(m if c == a else c for c, a, m in zip(cols, AZURE_COLUMNS, MOONCAKE_COLUMNS, strict=True))  # type: ignore[assignment]
    return _load_cached(str(path), fmt, cols, path.stat().st_mtime_ns)


class TraceSource:
    """Replays a trace as the generator's arrival source (deterministic: replications differ only in the
    classes drawn by share)."""

    def __init__(self, exp: Experiment, replication: int, horizon_s: float):
        del replication
        spec = exp.workload.arrivals
        self.trace = load_trace(spec)
        self.horizon_s = float(horizon_s)
        self.speed = float(spec.speed)
        self.times = self.trace.times / self.speed
        n = self.trace.size
        self.loop = bool(spec.loop)
        self.period = math.inf
        if self.loop:
            if n < 2 or self.trace.duration_s <= 0:
                raise ValueError("loop needs a trace with at least two distinct times")
            self.period = self.trace.duration_s * n / (n - 1) / self.speed

    def mean_rate(self) -> float:
        if self.loop:
            return self.trace.size / self.period
        within = int(np.searchsorted(self.times, self.horizon_s, side="left"))
        return max(within, 1) / self.horizon_s

    def _rows(self, t0: float, t1: float) -> list[tuple[int, int, float]]:
        """(first row, end row, time shift) of each repetition overlapping [t0, t1)."""
        if not self.loop:
            return [(int(np.searchsorted(self.times, t0, "left")), int(np.searchsorted(self.times, t1, "left")), 0.0)]
        out = []
        for rep in range(int(math.floor(t0 / self.period)), int(math.floor(t1 / self.period)) + 1):
            shift = rep * self.period
            i0 = int(np.searchsorted(self.times, t0 - shift, "left"))
            i1 = int(np.searchsorted(self.times, t1 - shift, "left"))
            if i1 > i0:
                out.append((i0, i1, shift))
        return out

    def arrivals(
        self, t0: float, t1: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        tr = self.trace
        parts = self._rows(t0, t1)
        rows = np.concatenate([np.arange(i0, i1) for i0, i1, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
        rows = rows.astype(np.int64)
        times = np.concatenate([self.times[i0:i1] + shift for i0, i1, shift in parts]) if parts else np.zeros(0)
        # keep within [t0, t1) despite rounding of the shifted times
        np.clip(times, t0, np.nextafter(t1, -np.inf), out=times)
        tin = tr.input_tokens[rows].copy()
        tout = tr.output_tokens[rows].copy()
        hashes = None
        if tr.hash_ids is not None and tr.hash_offsets is not None:
            hashes = ragged_gather(tr.hash_ids, tr.hash_offsets, rows)
        return times, tin, tout, hashes
