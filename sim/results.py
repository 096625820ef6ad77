"""The results folder: resolved config, summary, per-replication rows, time series, partial checkpoints.

Every finished replication is checkpointed at once (`.partial/rep-NNNNNN.pkl`), so an interrupted run
resumes with `--resume`; the final files are written from the sorted replications, each atomically.
"""

from __future__ import annotations

import json
import math
import pickle
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim import __version__
from sim.atomic import write_atomic, write_bytes_atomic, write_text_atomic
from sim.config import Experiment
from sim.config.loader import resolved_yaml
from sim.metrics_catalog import METRICS
from sim.replication import ReplicationResult
from sim.stats import bootstrap_interval, clean_values, summarize

PARTIAL = ".partial"


def default_out_dir(exp: Experiment, root: Path = Path("results")) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return root / exp.name / stamp


class ResultsFolder:
    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def partial_dir(self) -> Path:
        return self.path / PARTIAL

    def prepare(self, exp: Experiment, resume: bool) -> dict[int, ReplicationResult]:
        """Create the folder; with resume, return the replications already finished there."""
        self.path.mkdir(parents=True, exist_ok=True)
        done: dict[int, ReplicationResult] = {}
        cfg = self.path / "config.yaml"
        if resume and cfg.exists():
            from sim.config.loader import load_config_text

            previous = load_config_text(cfg.read_text(encoding="utf-8"))
            if previous.model_copy(update={"replications": exp.replications}) != exp:
                raise ResumeMismatch(
                    f"{cfg} holds a different experiment; resume needs the same config (only replications may grow)"
                )
            if self.partial_dir.exists():
                for f in sorted(self.partial_dir.glob("rep-*.pkl")):
                    try:
                        r = pickle.loads(f.read_bytes())
                    except Exception:  # noqa: BLE001 - a damaged checkpoint is simply rerun
                        continue
                    done[r.replication] = r
        write_text_atomic(cfg, resolved_yaml(exp))
        return done

    def checkpoint(self, result: ReplicationResult) -> None:
        write_bytes_atomic(
            self.partial_dir / f"rep-{result.replication:06d}.pkl",
            pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL),
        )

    def write_final(
        self, exp: Experiment, results: list[ReplicationResult], extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        results = sorted(results, key=lambda r: r.replication)
        rows = []
        for r in results:
            row: dict[str, Any] = {"replication": r.replication}
            row.update(r.metrics)
            row.update(r.breakdown)
            row["wall_s"] = r.wall_s
            row["num_events"] = r.num_events
            rows.append(row)
        table = pd.DataFrame(rows)
        summary = build_summary(exp, results, extra)
        write_text_atomic(self.path / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
        write_atomic(self.path / "replications.parquet", lambda p: table.to_parquet(p, index=False))
        write_atomic(self.path / "replications.csv", lambda p: table.to_csv(p, index=False))
        if exp.output.timeseries and results and results[0].timeseries:
            ts = pd.concat(
                [
                    pd.DataFrame({"replication": np.full(len(r.timeseries["minute"]), r.replication), **r.timeseries})
                    for r in results
                ],
                ignore_index=True,
            )
            write_atomic(self.path / "timeseries.parquet", lambda p: ts.to_parquet(p, index=False))
        hourly = pd.concat(
            [pd.DataFrame({"replication": r.replication, "hour": np.arange(24), **r.hourly}) for r in results],
            ignore_index=True,
        )
        write_atomic(self.path / "hourly.parquet", lambda p: hourly.to_parquet(p, index=False))
        if exp.output.requests:
            frames = [pd.DataFrame({"replication": r.replication, **r.requests}) for r in results if r.requests]
            if frames:
                req = pd.concat(frames, ignore_index=True)
                write_atomic(self.path / "requests.parquet", lambda p: req.to_parquet(p, index=False))
        return summary

    def clear_partial(self) -> None:
        if self.partial_dir.exists():
            for f in self.partial_dir.glob("*"):
                f.unlink(missing_ok=True)
            self.partial_dir.rmdir()


class ResumeMismatch(Exception):
    pass


def _json_safe(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    return v


def build_summary(
    exp: Experiment, results: list[ReplicationResult], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    names = list(METRICS)
    for name in names:
        values = [r.metrics.get(name) for r in results]
        metrics[name] = {k: _json_safe(v) for k, v in summarize(values).items()}
        if is_percentile_metric(name):
            metrics[name].update(_bootstrap_keys(name, values))
    breakdown_keys = sorted({k for r in results for k in r.breakdown})
    breakdown = {
        k: {kk: _json_safe(vv) for kk, vv in summarize([r.breakdown.get(k) for r in results]).items()}
        for k in breakdown_keys
    }
    out: dict[str, Any] = {
        "name": exp.name,
        "seed": exp.seed,
        "replications": len(results),
        "horizon_h": exp.horizon_h,
        "warmup_h": exp.warmup_h,
        "capsim_version": __version__,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": metrics,
        "breakdown": breakdown,
    }
    if exp.plan.targets:
        from sim.targets import parse_targets, targets_summary

        out["targets"] = targets_summary(
            parse_targets(exp.plan.targets), [r.metrics for r in results], exp.plan.confidence
        )
    if extra:
        out.update(extra)
    return out


_PERCENTILE = re.compile(r"_p\d+_s$")
BOOTSTRAP_RESAMPLES = 2000


def is_percentile_metric(name: str) -> bool:
    """ttft_p95_s, peak_ttft_p95_s, ...: per-replication percentiles, often skewed across replications."""
    return bool(_PERCENTILE.search(name))


def _bootstrap_keys(name: str, values: list[Any]) -> dict[str, float | None]:
    """Percentile-bootstrap 95% interval of the across-replication mean (a fixed seed per metric name)."""
    from sim.rng import name_key

    x = clean_values(values)
    if x.size < 2:
        mean = _json_safe(float(x[0])) if x.size else None
        return {"boot95_low": mean, "boot95_high": mean}
    low, high = bootstrap_interval(x, 0.95, n_boot=BOOTSTRAP_RESAMPLES, seed=name_key(name))
    return {"boot95_low": _json_safe(low), "boot95_high": _json_safe(high)}
