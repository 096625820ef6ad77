"""Reading a user's request log for `capsim fit`: one row per request, robust to what real logs hold.

Formats: CSV (the Azure LLM trace and any plain CSV), JSON lines (the Mooncake trace, gateway exports) and
Parquet, picked from the file name unless given. Columns are named by the caller or found among the usual
names (`COLUMN_CANDIDATES`): a time, input and output tokens, and optionally a class, a user (or session)
id and a prompt hash (a scalar, or a Mooncake `hash_ids` list of prefix-block ids).

Times: ISO 8601 date-times, each with its own offset or `Z` (mixed offsets are fine) or naive (taken in
`--timezone`), or numbers: epoch seconds, milliseconds, microseconds or nanoseconds told apart by
magnitude (>= 1e8 s, i.e. after 1973), or, when every number is below 1e8, times relative to the log's
start (seconds; milliseconds for the Mooncake layout). Everything is turned into wall-clock seconds of
the chosen time zone, so the hour-of-week profile is local.

Nothing is dropped silently: a row whose time cannot be read is left out and counted; a row with a
missing or invalid token count still counts for the rate but not for the sizes, and is counted; each kind
of problem keeps its count and the first few line numbers. Messages name columns, never cell contents
(a log may hold user data).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workloads.log_cells import LogError, Problems, _blank, _local_seconds, _numbers, _offsets_h, _utc_seconds, _zone

FORMATS = ("csv", "jsonl", "parquet")
MAX_LOG_BYTES = 8 * 1024**3

COLUMN_CANDIDATES: dict[str, tuple[str, ...]] = {
    "time": ("TIMESTAMP", "timestamp", "time", "created_at", "startTime", "start_time", "request_time", "ts"),
    "input": ("ContextTokens", "input_length", "input_tokens", "prompt_tokens", "promptTokens", "tokens_in"),
    "output": (
        "GeneratedTokens",
        "output_length",
        "output_tokens",
        "completion_tokens",
        "completionTokens",
        "tokens_out",
    ),
    "class": ("class", "request_class"),
    "user": ("user", "user_id", "session_id", "end_user", "userId"),
    "prompt_hash": ("prompt_hash", "hash_ids", "cache_key"),
}
OPTIONAL = ("class", "user", "prompt_hash")
_MOONCAKE_FIELDS = {"input_length", "output_length"}


@dataclass
class RequestLog:
    """The usable rows of a log, sorted by time (stable)."""

    path: str
    fmt: str
    columns: dict[str, str]  # role -> column name used
    local_s: np.ndarray  # float64 wall-clock seconds in `timezone` since 1970-01-01 (or since start)
    has_calendar: bool  # False: times relative to the log's start (no weekday, no time of day)
    timezone: str
    utc_offset_h: float  # the zone's offset at the log's middle
    offsets_h: tuple[float, ...]  # every offset the zone had over the log (DST)
    input_tokens: np.ndarray  # float64, NaN where missing or invalid
    output_tokens: np.ndarray
    classes: np.ndarray | None  # object (str) or None
    users: np.ndarray | None  # object (str), None entries where missing
    prompt_hash: np.ndarray | None  # object: str or tuple of ints (prefix blocks)
    line_numbers: np.ndarray  # int64, file line (or Parquet row) of each kept row
    rows_read: int
    problems: Problems
    unit: str = "line"

    @property
    def size(self) -> int:
        return int(self.local_s.size)

    @property
    def span_s(self) -> float:
        return float(self.local_s[-1] - self.local_s[0]) if self.size else 0.0

    def sized(self) -> np.ndarray:
        """Rows whose input and output tokens are both valid."""
        return np.isfinite(self.input_tokens) & np.isfinite(self.output_tokens)


def log_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise LogError(f"--format must be one of {', '.join(FORMATS)}")
        return fmt
    name = path.name.lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv"


def _pick(role: str, given: str | None, available: list[str]) -> str | None:
    if given is not None:
        if given not in available:
            raise LogError(
                f"no column {given!r} for --{role.replace('_', '-')}-column (columns: {', '.join(available)})"
            )
        return given
    for cand in COLUMN_CANDIDATES[role]:
        if cand in available:
            return cand
    if role in OPTIONAL:
        return None
    names = ", ".join(COLUMN_CANDIDATES[role])
    raise LogError(
        f"no {role} column found (looked for {names}; columns: {', '.join(available)}); name it with --{role}-column"
    )


def _safe_columns(cols: list[Any]) -> list[str]:
    """Column names as shown in messages: printable, bounded (a header is still file content)."""
    out = []
    for c in cols:
        s = "".join(ch if ch.isprintable() else "?" for ch in str(c))
        out.append(s[:64])
    return out


def _read_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray, Problems]:
    problems = Problems()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(
                path,
                skip_blank_lines=False,  # a blank line is a row with no time: counted, not skipped
                on_bad_lines="warn",
                encoding_errors="replace",
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError, OSError) as exc:
            raise LogError(f"{path}: cannot be read as CSV ({type(exc).__name__})") from None
    skipped = sorted(
        int(m.group(1))
        for w in caught
        for m in re.finditer(r"line (\d+):", str(w.message))
        if "Skipping" in str(w.message)
    )
    problems.add("wrong number of fields (row left out)", skipped)
    total = len(frame) + len(skipped)
    keep = np.ones(total, dtype=bool)
    drop = np.asarray(skipped, dtype=np.int64) - 2
    keep[drop[(drop >= 0) & (drop < total)]] = False
    lines = (np.flatnonzero(keep) + 2)[: len(frame)].astype(np.int64)
    return frame, lines, problems


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, np.ndarray, Problems]:
    problems = Problems()
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    bad_json: list[int] = []
    not_object: list[int] = []
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                bad_json.append(lineno)
                continue
            if not isinstance(rec, dict):
                not_object.append(lineno)
                continue
            records.append(rec)
            lines.append(lineno)
    problems.add("not JSON (row left out)", bad_json)
    problems.add("not a JSON object (row left out)", not_object)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    return frame, np.asarray(lines, dtype=np.int64), problems


def _read_parquet(path: Path) -> tuple[pd.DataFrame, np.ndarray, Problems]:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise LogError(f"{path}: cannot be read as Parquet ({type(exc).__name__})") from None
    return frame, np.arange(1, len(frame) + 1, dtype=np.int64), Problems()


def _tokens(series: pd.Series, role: str, problems: Problems, lines: np.ndarray) -> np.ndarray:
    v = _numbers(series)
    raw_missing = _blank(series)
    missing = ~np.isfinite(v) & raw_missing
    invalid = (~np.isfinite(v) & ~raw_missing) | (np.isfinite(v) & ((v < 0) | (v != np.floor(v)) | (v > 1e9)))
    problems.add(f"{role} tokens missing (counted for the rate, not the sizes)", lines[missing])
    problems.add(f"{role} tokens not a whole number >= 0 (counted for the rate, not the sizes)", lines[invalid])
    v = v.copy()
    v[invalid | missing] = np.nan
    return v


def _labels(series: pd.Series) -> np.ndarray:
    def one(v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, str):
            s = v.strip()
            return s or None
        if isinstance(v, list | tuple | np.ndarray):
            return tuple(int(x) for x in v) if all(isinstance(x, int | np.integer) for x in v) else None
        return str(v)

    return np.asarray([one(v) for v in series], dtype=object)


def read_request_log(
    path: str | Path,
    fmt: str | None = None,
    columns: dict[str, str | None] | None = None,
    timezone: str = "UTC",
) -> RequestLog:
    """Read a request log (see the module doc). Raises LogError when nothing usable remains."""
    p = Path(path)
    if not p.is_file():
        raise LogError(f"{p}: no such file")
    if p.stat().st_size > MAX_LOG_BYTES:
        raise LogError(f"{p}: larger than {MAX_LOG_BYTES // 1024**3} GiB; sample it first")
    kind = log_format(p, fmt)
    tz = _zone(timezone)
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[kind]
    frame, lines, problems = reader(p)
    unit = "row" if kind == "parquet" else "line"
    if frame.empty or len(frame.columns) == 0:
        raise LogError(f"{p}: no rows" + (f" ({'; '.join(problems.summary(unit))})" if problems.counts else ""))
    available = _safe_columns(list(frame.columns))
    frame.columns = available
    given = columns or {}
    used: dict[str, str] = {}
    for role in COLUMN_CANDIDATES:
        col = _pick(role, given.get(role), available)
        if col is not None:
            used[role] = col
    mooncake = kind == "jsonl" and set(available) >= _MOONCAKE_FIELDS
    rows_read = len(frame) + sum(problems.counts.values())
    utc, has_calendar = _utc_seconds(frame[used["time"]], tz, problems, lines, mooncake)
    good = np.isfinite(utc)
    if not good.any():
        detail = "; ".join(problems.summary(unit))
        raise LogError(f"{p}: no row has a usable time in column {used['time']!r} ({detail})")
    frame = frame.loc[good].reset_index(drop=True)
    utc, lines = utc[good], lines[good]
    order = np.argsort(utc, kind="stable")
    unsorted = int(np.count_nonzero(np.diff(utc) < 0))
    if unsorted:
        problems.notes.append(f"{unsorted} rows came earlier than the row before them (sorted by time)")
    frame = frame.iloc[order].reset_index(drop=True)
    utc, lines = utc[order], lines[order]
    dupes = int(np.count_nonzero(np.diff(utc) == 0))
    if dupes:
        problems.notes.append(f"{dupes} rows share their timestamp with the row before them (kept: they are traffic)")
    tin = _tokens(frame[used["input"]], "input", problems, lines)
    tout = _tokens(frame[used["output"]], "output", problems, lines)
    if not (np.isfinite(tin) & np.isfinite(tout)).any():
        raise LogError(f"{p}: no row has usable input and output tokens ({'; '.join(problems.summary(unit))})")
    classes = users = hashes = None
    if "class" in used:
        classes = _labels(frame[used["class"]])
        missing = np.array([c is None for c in classes], dtype=bool)
        problems.add("class missing (put in class 'unlabelled')", lines[missing])
        classes[missing] = "unlabelled"
    if "user" in used:
        users = _labels(frame[used["user"]])
        problems.add("user missing (not part of any session)", lines[np.array([u is None for u in users], dtype=bool)])
    if "prompt_hash" in used:
        hashes = _labels(frame[used["prompt_hash"]])
        problems.add("prompt hash missing", lines[np.array([h is None for h in hashes], dtype=bool)])
    if has_calendar:
        offset_h, offsets = _offsets_h(tz, utc)
        local = _local_seconds(utc, tz, offsets)
    else:
        offset_h, offsets = 0.0, (0.0,)
        local = utc - utc[0]
    return RequestLog(
        path=str(p),
        fmt=kind,
        columns=used,
        local_s=local,
        has_calendar=has_calendar,
        timezone=timezone,
        utc_offset_h=offset_h,
        offsets_h=offsets,
        input_tokens=tin,
        output_tokens=tout,
        classes=classes,
        users=users,
        prompt_hash=hashes,
        line_numbers=lines,
        rows_read=rows_read,
        problems=problems,
        unit=unit,
    )
