"""Locating and reading the data files that configs point at (empirical distributions, traces).

`resolve_data_file` looks for a file name in a fixed order; `read_column` reads one numeric column of a
CSV or JSONL file into a read-only float64 array, cached per (resolved path, column, modification time).

Errors name the path and the problem, never the file's content (a config pointing at /etc/passwd must not
print its first line): column names found in a file are counted, not listed, and a parser's message is
reduced to its type and line number (`data_error`).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"

_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")


def resolve_data_file(name: str, base_dir: Path | None = None) -> Path:
    """Find a data file.

    An absolute `name` is taken as is. A relative one is tried, in order, against `base_dir` (the
    folder of the config file), the current working directory, and the package's bundled profiles
    (`workloads/profiles/<basename>`). Raises FileNotFoundError naming every place looked in.
    """
    path = Path(name).expanduser()
    candidates: list[Path] = []
    if path.is_absolute():
        candidates.append(path)
    else:
        if base_dir is not None:
            candidates.append(Path(base_dir) / path)
        candidates.append(Path.cwd() / path)
        candidates.append(PROFILES_DIR / path.name)
    for c in candidates:
        if c.is_file():
            return c
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"file not found: {name} (looked in {looked})")


def data_error(path: Path, what: str, exc: BaseException) -> ValueError:
    """A data file that does not parse as `what`: the path, the parser's error type and line, no content."""
    line = re.search(r"\bline (\d+)", str(exc))
    at = f" (at line {line.group(1)})" if line else ""
    return ValueError(f"{path}: cannot be read as {what}{at}: {type(exc).__name__}")


def no_column(path: Path, column: str, found: int, kind: str = "column") -> ValueError:
    return ValueError(f"{path}: has no {kind} {column!r} ({found} {kind}s found, none of them {column!r})")


def _is_jsonl(path: Path) -> bool:
    return path.name.lower().endswith(_JSONL_SUFFIXES)


@functools.lru_cache(maxsize=64)
def _read_column_cached(path_str: str, column: str, mtime_ns: int) -> np.ndarray:
    import pandas as pd  # lazy: pandas costs ~0.3 s of start-up and only file-backed configs need it

    del mtime_ns  # part of the cache key only: an edited file is read again
    path = Path(path_str)
    if _is_jsonl(path):
        try:
            frame = pd.read_json(path, lines=True)
        except (ValueError, UnicodeDecodeError) as exc:
            raise data_error(path, "JSON lines", exc) from None
        if column not in frame.columns:
            raise no_column(path, column, len(frame.columns))
        series = frame[column]
    else:
        try:
            header = pd.read_csv(path, nrows=0)
            if column not in header.columns:
                raise no_column(path, column, len(header.columns))
            series = pd.read_csv(path, usecols=[column])[column]
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise data_error(path, "CSV", exc) from None
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        raise ValueError(f"{path}: column {column!r} is not numeric (dtype {series.dtype})")
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if values.size == 0:
        raise ValueError(f"{path}: column {column!r} has no values")
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}: column {column!r} has a missing or non-finite value at data row {row + 1}")
    values = np.ascontiguousarray(values)
    values.setflags(write=False)
    return values


def read_column(file: str, column: str, base_dir: Path | None = None) -> np.ndarray:
    """One numeric column of a CSV (or, for `.jsonl`, JSON-lines) file as a read-only float64 array.

    Raises FileNotFoundError if the file cannot be found, ValueError if the column is missing, not
    numeric, empty, or holds missing/non-finite values.
    """
    path = resolve_data_file(file, base_dir).resolve()
    return _read_column_cached(str(path), column, path.stat().st_mtime_ns)
