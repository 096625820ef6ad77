"""Everything the report reads from a results folder, loaded tolerantly.

A results folder of `capsim run` holds config.yaml, summary.json, replications.parquet, timeseries.parquet and
hourly.parquet (see sim/engine/results.py); `capsim plan` and `capsim breakeven` folders may hold plan.json or
breakeven.json instead of (or beside) those. Any file or column may be missing: the report shows what exists.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

# Files whose presence makes a folder a results folder.
MARKER_FILES = ("summary.json", "plan.json", "breakeven.json")


class NotAResultsFolder(Exception):
    """The folder holds none of the files a capsim run, plan or breakeven writes."""


def is_results_folder(folder: Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and any((folder / f).is_file() for f in MARKER_FILES)


def folder_problem(folder: Path) -> str | None:
    """Why a results folder cannot be reported or compared (half-written, corrupt), or None.

    The loader below is tolerant of missing optional files; this is the strict check a command makes first:
    an interrupted run (`.partial/` present, or a summary without its rows), a marker file that is not
    a JSON object, a table that does not read."""
    folder = Path(folder)
    if (folder / ".partial").exists() or (folder / ".partial").is_symlink():
        return "holds an interrupted run (.partial/); finish it with capsim run CONFIG --out FOLDER --resume"
    for name in MARKER_FILES:
        path = folder / name
        if path.is_symlink():
            return f"{name} is a symlink; capsim never reads results through one"
        if path.exists():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                return f"{name} is not valid JSON ({type(exc).__name__}); the folder is damaged or half-written"
            if not isinstance(doc, dict):
                return f"{name} is not a JSON object; the folder is damaged"
    if (folder / "summary.json").exists():
        table = folder / "replications.parquet"
        if not table.is_file():
            return "summary.json has no replications.parquet beside it; the folder is half-written"
        try:
            pd.read_parquet(table)
        except Exception as exc:  # noqa: BLE001 - any failure to read is the answer
            return f"replications.parquet does not read ({type(exc).__name__}); the folder is damaged"
    return None


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_parquet(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        df = pd.read_parquet(path)
    except Exception:  # noqa: BLE001 - a damaged optional file is left out of the report
        return None
    # nullable Float64 columns (nulls for undefined metrics) become plain floats with NaN for plotting
    df = df.astype({c: "float64" for c in df.columns if str(df[c].dtype) in ("Float64", "Int64")})
    return df if len(df) else None


@dataclass
class ReportData:
    folder: Path
    summary: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    config_text: str | None = None
    reps: pd.DataFrame | None = None
    timeseries: pd.DataFrame | None = None
    hourly: pd.DataFrame | None = None
    plan: dict[str, Any] | None = None
    breakeven: dict[str, Any] | None = None

    # ----------------------------------------------------------------- digest
    @property
    def name(self) -> str:
        for src in (self.summary, self.config):
            if src and src.get("name"):
                return str(src["name"])
        return self.folder.name

    def get(self, dotted: str, default: Any = None) -> Any:
        """A value of the resolved config by dotted path, or default."""
        cur: Any = self.config
        for part in dotted.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return default
            cur = cur[part]
        return default if cur is None else cur

    def digest(self) -> dict[str, Any]:
        s = self.summary or {}
        return {
            "name": self.name,
            "seed": s.get("seed", self.get("seed")),
            "replications": s.get("replications", self.get("replications")),
            "horizon_h": s.get("horizon_h", self.get("horizon_h")),
            "warmup_h": s.get("warmup_h", self.get("warmup_h")),
            "start_weekday": self.get("start_weekday"),
            "capsim_version": s.get("capsim_version"),
            "created_utc": s.get("created_utc"),
        }

    # ----------------------------------------------------------------- config facts the charts need
    @property
    def classes(self) -> list[dict[str, Any]]:
        cl = self.get("workload.classes", [])
        return [c for c in cl if isinstance(c, dict)] if isinstance(cl, list) else []

    def slo_class(self) -> dict[str, Any] | None:
        """The class whose TTFT SLO the latency chart draws: one named 'interactive', else the first."""
        cl = self.classes
        for c in cl:
            if c.get("name") == "interactive":
                return c
        return cl[0] if cl else None

    @property
    def peak_hour(self) -> float | None:
        kind = self.get("workload.arrivals.kind")
        ph = self.get("workload.arrivals.peak_hour")
        if ph is None or kind not in (None, "diurnal"):
            return None
        return float(ph)

    @property
    def warmup_h(self) -> float:
        v = self.digest().get("warmup_h")
        return float(v) if v is not None else 0.0

    @property
    def measured_h(self) -> float | None:
        h = self.digest().get("horizon_h")
        return float(h) - self.warmup_h if h is not None else None

    def monthly_factor(self) -> float:
        """Multiplier from a horizon total to a monthly figure (as monthly_cost_usd / cost_total_usd)."""
        m, t = self.metric_mean("monthly_cost_usd"), self.metric_mean("cost_total_usd")
        if m is not None and t:
            return m / t
        hpm = float(self.get("costs.hours_per_month", 730.0))
        mh = self.measured_h
        return hpm / mh if mh else 1.0

    def targets(self) -> list[tuple[str, str, float]]:
        out = []
        for t in self.get("plan.targets", []) or []:
            parts = str(t).replace(" ", "").replace(">=", " >= ").replace("<=", " <= ").split()
            if len(parts) == 3:
                try:
                    out.append((parts[0], parts[1], float(parts[2])))
                except ValueError:
                    continue
        return out

    # ----------------------------------------------------------------- summary access
    def metric(self, name: str) -> dict[str, Any] | None:
        if not self.summary:
            return None
        m = self.summary.get("metrics", {}).get(name) or self.summary.get("breakdown", {}).get(name)
        return m if isinstance(m, dict) and m.get("mean") is not None else None

    def metric_mean(self, name: str) -> float | None:
        m = self.metric(name)
        return float(m["mean"]) if m and m.get("mean") is not None else None

    def rep_values(self, column: str) -> np.ndarray:
        """Finite per-replication values of a column of replications.parquet (empty when absent)."""
        if self.reps is None or column not in self.reps.columns:
            return np.zeros(0)
        x = pd.to_numeric(self.reps[column], errors="coerce").to_numpy(dtype=np.float64)
        return x[np.isfinite(x)]

    def breakdown_keys(self) -> list[str]:
        keys: set[str] = set()
        if self.summary:
            keys.update(self.summary.get("breakdown", {}) or {})
        return sorted(keys)


def load(folder: Path) -> ReportData:
    folder = Path(folder)
    if not is_results_folder(folder):
        raise NotAResultsFolder(f"{folder}: not a capsim results folder (expected one of {', '.join(MARKER_FILES)})")
    d = ReportData(folder=folder)
    s = _read_json(folder / "summary.json")
    d.summary = s if isinstance(s, dict) else None
    cfg = folder / "config.yaml"
    if cfg.is_file():
        try:
            d.config_text = cfg.read_text(encoding="utf-8")
            loaded = yaml.safe_load(d.config_text)
            d.config = loaded if isinstance(loaded, dict) else {}
        except (OSError, yaml.YAMLError):
            d.config = {}
    d.reps = _read_parquet(folder / "replications.parquet")
    if d.reps is None and (folder / "replications.csv").is_file():
        try:
            d.reps = pd.read_csv(folder / "replications.csv")
        except Exception:  # noqa: BLE001
            d.reps = None
    d.timeseries = _read_parquet(folder / "timeseries.parquet")
    d.hourly = _read_parquet(folder / "hourly.parquet")
    p = _read_json(folder / "plan.json")
    d.plan = p if isinstance(p, dict) else None
    b = _read_json(folder / "breakeven.json")
    d.breakeven = b if isinstance(b, dict) else None
    return d


def finite(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
