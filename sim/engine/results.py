"""The results folder: resolved config, summary, per-replication rows, time series, partial checkpoints.

Every finished replication is checkpointed at once (`.partial/rep-NNNNNN.npz`, see sim.checkpoints), so
an interrupted run resumes with `--resume`. The final files are assembled by streaming the checkpoints in
replication order, one replication in memory at a time (the summary needs only the small per-replication
rows), each file written under a temporary name and renamed. Then `.partial/` is removed.

The folder is a security boundary: it is locked while a run writes it (sim.folder_lock), nothing in it is
followed through a symlink (sim.atomic), checkpoints are data bound to the run's identity (config hash and
seed) and a bad one stops the run with a message; only files this run wrote, or checkpoints it validated,
are ever removed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from backends.models.latency_capacity import latency_capacity_summary
from sim.config import Experiment
from sim.core.atomic import UnsafePath, dir_fd, open_dir, unlink_own, write_atomic, write_text_atomic
from sim.core.metrics import METRICS, metric_bounds
from sim.core.stats import bootstrap_interval, clean_values, summarize
from sim.core.version import __version__
from sim.engine.bill import month_composition
from sim.engine.checkpoints import CheckpointRefused, CheckpointStore, checkpoint_key, register
from sim.engine.loading import resolved_yaml
from sim.engine.replication import ReplicationResult

if TYPE_CHECKING:
    import pandas as pd

PARTIAL = ".partial"
# keys of the resolved config that may differ between a run and its resume (they do not change results)
RESUME_FREE_KEYS = ("replications", "limits")


def default_out_dir(exp: Experiment, root: Path = Path("results")) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return root / exp.name / stamp


def rep_key(replication: int) -> str:
    return checkpoint_key("rep", replication)


def run_identity(exp: Experiment) -> dict[str, Any]:
    """What binds a checkpoint to its run: the hash of the resolved config (less the keys a resume may
    change) and the seed."""
    doc = exp.model_dump(mode="json")
    for k in RESUME_FREE_KEYS:
        doc.pop(k, None)
    text = json.dumps(doc, sort_keys=True, allow_nan=True, separators=(",", ":"))
    return {"config_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "seed": exp.seed}


class ResumeMismatch(Exception):
    """The folder cannot take this run (another experiment, an interrupted run without --resume, a bad
    checkpoint, not a writable folder): exit 2 with the message."""


def check_out_dir(path: Path) -> None:
    """ResumeMismatch unless `path` is, or can be made as, a writable folder (not a file, not /dev/null,
    not a symlink... of a folder's entry, not read-only)."""
    path = Path(path)
    try:
        fd = open_dir(path)
    except UnsafePath as exc:
        raise ResumeMismatch(str(exc)) from None
    except OSError as exc:
        raise ResumeMismatch(f"{path}: cannot make or open the results folder ({exc.strerror or exc})") from None
    try:
        probe = f".capsim-probe-{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=fd))
        os.unlink(probe, dir_fd=fd)
    except OSError as exc:
        raise ResumeMismatch(f"{path}: the results folder is not writable ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


class AlreadyComplete(Exception):
    """--resume on a folder whose run finished with this many replications: nothing to do."""


register(ReplicationResult)


def finished_reps(store: CheckpointStore, limit: int) -> list[int]:
    """Indices below limit of the replications checkpointed in store ("rep-NNNNNN"), sorted."""
    reps = (k[4:] for k in store.keys("rep-"))
    return sorted(int(k) for k in reps if k.isdigit() and int(k) < limit)


def load_replication(store: CheckpointStore, rep: int) -> ReplicationResult:
    """Replication rep's checkpoint, checked to be a ReplicationResult of that index (CheckpointRefused)."""
    result = store.load(rep_key(rep))
    if not isinstance(result, ReplicationResult) or result.replication != rep:
        raise CheckpointRefused(f"{store.path(rep_key(rep))} does not hold replication {rep}")
    return result


class DoneReplications(Mapping[int, ReplicationResult]):
    """The replications checkpointed in a store, by index; results are loaded only when asked for."""

    def __init__(self, store: CheckpointStore, limit: int):
        self.store = store
        self._reps = finished_reps(store, limit)
        self._set = frozenset(self._reps)
        for rep in self._reps:  # validate every checkpoint before anything runs (CheckpointRefused)
            self[rep]

    def __contains__(self, rep: object) -> bool:
        return rep in self._set

    def __getitem__(self, rep: int) -> ReplicationResult:
        return load_replication(self.store, rep)

    def __iter__(self) -> Iterator[int]:
        return iter(self._reps)

    def __len__(self) -> int:
        return len(self._reps)


class ResultsFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.store = CheckpointStore(self.path / PARTIAL)

    @property
    def partial_dir(self) -> Path:
        return self.store.dir

    def prepare(self, exp: Experiment, resume: bool) -> DoneReplications:
        """Create the folder; with resume, the replications already finished there (loaded lazily).

        Raises ResumeMismatch when resuming a different experiment, or when a folder holds an
        interrupted run and resume was not asked for (its finished replications would be thrown away);
        AlreadyComplete when resuming a run that finished with the same number of replications.
        """
        check_out_dir(self.path)
        self.store.identity = run_identity(exp)
        cfg = self.path / "config.yaml"
        try:
            if os.path.lexists(self.partial_dir):
                os.close(open_dir(self.partial_dir, create=False))  # a symlinked .partial is refused here
            legacy = self.store.legacy_files()
            if legacy:
                raise ResumeMismatch(
                    f"{self.partial_dir} holds pickled checkpoints of an older capsim ({legacy[0]}, ...), which "
                    f"this version never reads (unpickling can run code); delete {self.partial_dir} to start over"
                )
            if not resume and self.store.keys("rep-"):
                raise ResumeMismatch(
                    f"{self.path} holds an interrupted run ({len(self.store.keys('rep-'))} finished replications); "
                    f"add --resume to finish it, or use another --out (or delete {self.partial_dir})"
                )
            if resume:
                self.store.check_manifest()
            if resume and cfg.exists():
                self._check_same_experiment(cfg, exp)
                summary = self.path / "summary.json"
                if not self.store.keys() and summary.exists():
                    finished = json.loads(summary.read_text(encoding="utf-8")).get("replications")
                    if finished == exp.replications:
                        raise AlreadyComplete(f"{self.path} already holds the finished run ({finished} replications)")
                    raise ResumeMismatch(
                        f"{self.path} holds a finished run of {finished} replications; a finished run cannot be "
                        f"resumed to {exp.replications}: use another --out"
                    )
            done = DoneReplications(self.store, exp.replications)
            self.store.remove_stale_tmp(self.path)
            self.store.record_writer()
            write_text_atomic(cfg, resolved_yaml(exp))
        except (CheckpointRefused, UnsafePath) as exc:
            raise ResumeMismatch(f"{exc}; nothing was run") from None
        return done

    @staticmethod
    def _check_same_experiment(cfg: Path, exp: Experiment) -> None:
        try:
            previous = yaml.safe_load(cfg.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ResumeMismatch(f"{cfg} cannot be read ({exc}); cannot resume from it") from None
        current = exp.model_dump(mode="json")
        if not isinstance(previous, dict):
            raise ResumeMismatch(f"{cfg} is not a config; cannot resume from it")
        for k in RESUME_FREE_KEYS:
            previous.pop(k, None)
            current.pop(k, None)
        if previous != current:
            diff = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
            raise ResumeMismatch(
                f"{cfg} holds a different experiment (differs in: {', '.join(diff)}); resume needs the same "
                "config (only replications may change)"
            )

    def checkpoint(self, result: ReplicationResult) -> None:
        self.store.save(rep_key(result.replication), result)

    def finalize(
        self, exp: Experiment, extra: dict[str, Any] | None = None, point: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Write the final files from the checkpoints (replications 0..replications-1), streaming."""
        reps = finished_reps(self.store, exp.replications)
        return self.write_final(exp, (load_replication(self.store, r) for r in reps), extra, point)

    def write_final(
        self,
        exp: Experiment,
        results: Iterable[ReplicationResult],
        extra: dict[str, Any] | None = None,
        point: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write summary, rows, time series from results given in replication order (any iterable;
        each result is dropped once written, so a generator keeps memory to one replication).

        Every table carries the run's identity (`experiment`, `seed`, the sweep `point`'s values, then
        `replication`), so tables of several runs concatenate into one (docs/results.md)."""
        import pandas as pd  # lazy: pandas and pyarrow cost ~0.4 s of start-up; only writing needs them

        from sim.engine.parquet_stream import ParquetStream

        ident = identity(exp, point)

        def tagged(n: int, replication: int, columns: Mapping[str, Any]) -> pd.DataFrame:
            head = {k: np.full(n, v) if not isinstance(v, str) else [v] * n for k, v in ident.items()}
            return pd.DataFrame(head | {"replication": np.full(n, replication, dtype=np.int64)} | dict(columns))

        rows: list[dict[str, Any]] = []
        ts = (
            ParquetStream(self.path / "timeseries.parquet", rows_per_group=TIMESERIES_ROWS_PER_GROUP)
            if exp.output.timeseries
            else None
        )
        hourly = ParquetStream(self.path / "hourly.parquet")
        req = ParquetStream(self.path / "requests.parquet") if exp.output.requests else None
        streams = [s for s in (ts, hourly, req) if s is not None]
        try:
            for r in sorted(results, key=lambda r: r.replication) if isinstance(results, list) else results:
                rows.append(replication_row(r))
                if ts is not None and r.timeseries:
                    n = len(r.timeseries["minute"])
                    ts.add(tagged(n, r.replication, {k: _as_counts(k, v) for k, v in r.timeseries.items()}))
                if r.hourly:
                    hourly.add(
                        tagged(
                            24,
                            r.replication,
                            {"hour": np.arange(24, dtype=np.int64)}
                            | {
                                k: pd.array(v, dtype="Int64" if k in HOURLY_COUNTS else "Float64")
                                for k, v in r.hourly.items()
                            },
                        )
                    )
                if req is not None and r.requests:
                    n = len(next(iter(r.requests.values())))
                    req.add(tagged(n, r.replication, r.requests))
            for s in streams:
                s.close()
        except BaseException:
            for s in streams:
                s.abort()
            raise
        with dir_fd(self.path) as fd:
            for name, on in (("timeseries.parquet", exp.output.timeseries), ("requests.parquet", exp.output.requests)):
                if not on:
                    unlink_own(fd, name)  # a capsim file an earlier run left in this folder
        table = rows_frame(rows, ident)
        summary = summary_from_rows(exp, rows, extra)
        write_text_atomic(self.path / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
        write_atomic(self.path / "replications.parquet", lambda fh: table.to_parquet(fh, index=False))
        write_atomic(self.path / "replications.csv", lambda fh: table.to_csv(fh, index=False))
        return summary

    def clear_partial(self) -> None:
        self.store.clear(self.path)


def replication_row(r: ReplicationResult) -> dict[str, Any]:
    row: dict[str, Any] = {"replication": r.replication}
    row.update(r.metrics)
    row.update(r.breakdown)
    row["wall_s"] = r.wall_s
    row["num_events"] = r.num_events
    return row


# per-minute series that count events (stored as integers); the others are time averages of levels
TIMESERIES_COUNTS = frozenset({"minute", "arrivals"})
# one simulated day of minutes per row group: the writer's memory for a month's series is then a day's
TIMESERIES_ROWS_PER_GROUP = 1440
HOURLY_COUNTS = frozenset({"requests"})


def identity(exp: Experiment, point: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The columns that tell one run's rows from another's: experiment name, root seed, sweep values."""
    out: dict[str, Any] = {"experiment": exp.name, "seed": exp.seed}
    for k, v in (point or {}).items():
        out[k] = v if isinstance(v, (bool, int, float, str)) else str(v)
    return out


def _as_counts(name: str, values: np.ndarray) -> np.ndarray:
    if name in TIMESERIES_COUNTS:
        arr = np.asarray(values)
        if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
            return arr.astype(np.int64)
    return values


def is_count_column(name: str) -> bool:
    """A per-replication column that counts things (requests, tokens, 429 answers, requests.class.chat)."""
    from sim.core.units import is_share

    base = name.split(".", 1)[0]
    return not is_share(base) and not base.endswith(("_s", "_usd", "_h", "_ms")) and name != "replication"


def rows_frame(rows: list[dict[str, Any]], ident: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One row per replication, the run's identity first; an undefined metric (None, NaN, inf) is a null
    in Parquet and CSV; counts are stored as integers (nullable where a replication has none)."""
    import pandas as pd

    table = pd.DataFrame(rows)
    for i, (k, v) in enumerate((ident or {}).items()):
        table.insert(i, k, [v] * len(table))
    for col in table.columns:
        s = table[col]
        if s.dtype == object:
            if any(v is not None and not isinstance(v, (int, float, np.number)) for v in s):
                continue  # not a numeric column
            s = pd.to_numeric(s, errors="coerce")
        if s.dtype.kind == "f" or str(s.dtype) == "Float64":
            arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
            finite = np.isfinite(arr)
            if is_count_column(col) and (arr[finite] == np.round(arr[finite])).all():
                nullable = pd.array(np.where(finite, arr, np.nan), dtype="Float64").astype("Int64")
                table[col] = arr.astype(np.int64) if finite.all() else nullable
                continue
            table[col] = s if finite.all() else pd.array(np.where(finite, arr, np.nan), dtype="Float64")
    return table


def _json_safe(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    return v


def summary_from_rows(
    exp: Experiment, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """summary.json from per-replication rows (metrics and breakdown columns)."""
    metrics: dict[str, Any] = {}
    for name in METRICS:
        values = [row.get(name) for row in rows]
        metrics[name] = {k: _json_safe(v) for k, v in summarize(values, *metric_bounds(name)).items()}
        if is_percentile_metric(name):
            metrics[name].update(_bootstrap_keys(name, values))
    skip = {"replication", "wall_s", "num_events", *METRICS}
    breakdown_keys = sorted({k for row in rows for k in row if k not in skip})
    breakdown = {
        k: {kk: _json_safe(vv) for kk, vv in summarize([row.get(k) for row in rows], *metric_bounds(k)).items()}
        for k in breakdown_keys
    }
    out: dict[str, Any] = {
        "name": exp.name,
        "seed": exp.seed,
        "replications": len(rows),
        "horizon_h": exp.horizon_h,
        "warmup_h": exp.warmup_h,
        "capsim_version": __version__,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": metrics,
        "breakdown": breakdown,
        "month_composition": month_composition(exp),
        "latency_capacity": latency_capacity_summary(exp),
    }
    if exp.plan.targets:
        from sim.engine.targets import parse_targets, targets_summary

        out["targets"] = targets_summary(parse_targets(exp.plan.targets), rows, exp.plan.confidence)
    if extra:
        out.update(extra)
    return out


def build_summary(
    exp: Experiment, results: list[ReplicationResult], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return summary_from_rows(exp, [replication_row(r) for r in results], extra)


_PERCENTILE = re.compile(r"_p\d+_s$")
BOOTSTRAP_RESAMPLES = 2000


def is_percentile_metric(name: str) -> bool:
    """ttft_p95_s, peak_ttft_p95_s, ...: per-replication percentiles, often skewed across replications."""
    return bool(_PERCENTILE.search(name))


def _bootstrap_keys(name: str, values: list[Any]) -> dict[str, float | None]:
    """Percentile-bootstrap 95% interval of the across-replication mean (a fixed seed per metric name)."""
    from sim.core.rng import name_key

    x = clean_values(values)
    if x.size < 2:
        mean = _json_safe(float(x[0])) if x.size else None
        return {"boot95_low": mean, "boot95_high": mean}
    low, high = bootstrap_interval(x, 0.95, n_boot=BOOTSTRAP_RESAMPLES, seed=name_key(name))
    return {"boot95_low": _json_safe(low), "boot95_high": _json_safe(high)}
