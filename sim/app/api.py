"""The Python API: what the command line does, from a notebook (docs/python-api.md).

    import sim
    r = sim.simulate("experiments/default.yaml", replications=4, seed=1, backends__gpu_pool__servers=4)
    r.summary["metrics"]["peak_ttft_p95_s"]["mean"], r.replications, r.timeseries, r.hourly
    r.save("results/four-servers")

Every entry point reads its config the way `capsim validate` does (file, mapping, YAML text or an
`Experiment`, then the overrides), so every check applies and a bad config raises `ConfigError` with every
problem. A run goes through the same code as `capsim run` (the same folder writer, in a temporary folder
unless `out` is given), so the same config and seed give the same numbers as the command line.

Overrides: `overrides={"backends.gpu_pool.servers": 4}` (dotted keys, as `--set`), and keyword arguments
where a double underscore stands for a dot (`backends__gpu_pool__servers=4`); keyword overrides are applied
after the `overrides` mapping.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.config import Experiment
from sim.config.errors import ConfigError
from sim.engine.executor import Executor

if TYPE_CHECKING:
    import pandas as pd

ConfigLike = str | Path | Mapping[str, Any] | Experiment


def _override_items(overrides: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> list[str]:
    """`--set` items from a mapping of dotted keys and from keyword arguments (`__` for `.`)."""
    items = [(str(k), v) for k, v in (overrides or {}).items()]
    items += [(k.replace("__", "."), v) for k, v in kwargs.items()]
    # JSON is YAML: the value reads back exactly as given (strings, numbers, lists, mappings, null)
    return [f"{k}={json.dumps(v, allow_nan=False, default=str)}" for k, v in items]


def load_config(
    config: ConfigLike,
    overrides: Mapping[str, Any] | None = None,
    *,
    replications: int | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> Experiment:
    """A checked `Experiment` from a path, a YAML string, a mapping or an `Experiment`, with overrides.

    Runs every check `capsim validate` runs (the GPU and model catalog included); raises `ConfigError`,
    whose `.problems` lists each one with its dotted path (and line, for a file)."""
    import yaml

    from sim.engine.loading import load_config as load_file
    from sim.engine.loading import load_config_text

    items = _override_items(overrides, kwargs)
    if replications is not None:
        items.append(f"replications={int(replications)}")
    if seed is not None:
        items.append(f"seed={int(seed)}")
    if isinstance(config, (Experiment, Mapping)):
        data = config.model_dump(mode="json") if isinstance(config, Experiment) else dict(config)
        text = yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False)
        try:
            return load_config_text(text, items, base_dir=Path.cwd(), source="<mapping>")
        except ConfigError as exc:  # lines of a YAML text the user never saw mean nothing: paths only
            from sim.config.errors import Problem

            raise ConfigError([Problem(p.path, None, p.message) for p in exc.problems]) from None
    if isinstance(config, Path) or (isinstance(config, str) and "\n" not in config and config.strip() != "{}"):
        return load_file(config, items)
    return load_config_text(str(config), items, base_dir=Path.cwd(), source="<text>")


@dataclass
class SimulationResult:
    """A finished run: its summary, its tables (pandas DataFrames) and the folder it was written to."""

    experiment: Experiment
    summary: dict[str, Any]
    folder: Path
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    _tables: dict[str, pd.DataFrame | None] = field(default_factory=dict, repr=False)

    def _table(self, name: str) -> pd.DataFrame | None:
        if name not in self._tables:
            import pandas as pd

            path = self.folder / f"{name}.parquet"
            self._tables[name] = pd.read_parquet(path) if path.is_file() else None
        return self._tables[name]

    @property
    def replications(self) -> pd.DataFrame:
        """One row per replication, one column per metric (replications.parquet)."""
        table = self._table("replications")
        assert table is not None  # every run writes it
        return table

    @property
    def timeseries(self) -> pd.DataFrame | None:
        """One row per replication and simulated minute (None with `output.timeseries: false`)."""
        return self._table("timeseries")

    @property
    def hourly(self) -> pd.DataFrame | None:
        """One row per replication and hour of day: latency percentiles and requests by hour of arrival."""
        return self._table("hourly")

    @property
    def requests(self) -> pd.DataFrame | None:
        """One row per request (None unless `output.requests: true`)."""
        return self._table("requests")

    def metric(self, name: str) -> dict[str, Any]:
        """summary["metrics"][name]: mean, ci95_low, ci95_high, p5, p50, p95."""
        m: dict[str, Any] = self.summary["metrics"][name]
        return m

    def save(self, out: str | Path, report: bool = True) -> Path:
        """Write the results folder (as `capsim run --out`) to `out`, with its report; returns the path."""
        out = Path(out)
        if out.resolve() != self.folder.resolve():
            if out.exists() and any(out.iterdir()):
                raise FileExistsError(f"{out} exists and is not empty")
            shutil.copytree(self.folder, out, dirs_exist_ok=True, symlinks=True)
        if report:
            from sim.report import write_report

            write_report(out)
        return out

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"SimulationResult({s['name']!r}, {s['replications']} replications x {s['horizon_h']} h, seed {s['seed']})"
        )


def simulate(
    config: ConfigLike,
    overrides: Mapping[str, Any] | None = None,
    *,
    replications: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
    out: str | Path | None = None,
    progress: bool = False,
    **kwargs: Any,
) -> SimulationResult:
    """Run the Monte Carlo experiment (as `capsim run`) and return its summary and tables.

    `replications` and `seed` default to the config's; `workers` to the machine's cores. With `out`, the
    results folder is written there (report included, as the config's `output.report` says); otherwise into a
    temporary folder that lives as long as the result (`.save(dir)` keeps it)."""
    exp = load_config(config, overrides, replications=replications, seed=seed, **kwargs)
    runner = Executor(executor, workers, address)
    if exp.sweep:
        raise ValueError("this config has a `sweep:` grid: run it with `capsim run` (sim.simulate runs one point)")
    from sim.app.run_command import execute
    from sim.engine.results import ResultsFolder

    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="capsim-")
        folder = Path(tmp.name) / exp.name
    else:
        folder = Path(out)
    from sim.engine.folder_lock import lock_folder
    from sim.engine.results import check_out_dir

    rf = ResultsFolder(folder)
    report = out is not None and exp.output.report
    check_out_dir(folder)
    with lock_folder(folder):
        summary = execute(exp, rf, executor=runner, progress=progress, report=report)
    return SimulationResult(exp, summary, folder, tmp)


def plan(
    config: ConfigLike,
    vary: str | Sequence[str],
    targets: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    confidence: float | None = None,
    replications: int = 10,
    max_replications: int = 80,
    tol: float | None = None,
    screens: bool = True,
    seed: int | None = None,
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """`capsim plan`: the cheapest point of the space in `vary` ("KEY=LO..HI" searched, "KEY=V1,V2" enumerated;
    one string or several) meeting every target with probability >= confidence; returns the document
    `capsim plan --json` prints (`best` None: no point meets)."""
    from sim.app.plan_command import check_space
    from sim.studies.plan import resolve_options
    from sim.studies.search import Search, Space

    exp = load_config(config, overrides, seed=seed, **kwargs)
    runner = Executor(executor, workers, address)
    space = Space.parse([vary] if isinstance(vary, str) else list(vary))
    target_list = list(targets) if targets else None
    options = resolve_options(exp, target_list, confidence, replications, max_replications, tol, screens)
    check_space(exp, space, max_replications, screens, Path.cwd())
    with runner.session() as session:
        doc: dict[str, Any] = Search(exp, space, options, session, Path.cwd()).run().to_json()
    return doc


def breakeven(
    config: ConfigLike,
    volumes: str | Sequence[float],
    overrides: Mapping[str, Any] | None = None,
    *,
    replications: int = 10,
    max_replications: int = 80,
    max_servers: int = 256,
    seed: int | None = None,
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
    pool: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """`capsim breakeven`: API-only against self-hosted against hybrid monthly cost across monthly token
    volumes ("100M,1B" or numbers); returns the document `capsim breakeven --json` prints. With named pools,
    `pool` is the one sized (default: the first)."""
    from sim.engine.variants import derive
    from sim.studies.breakeven import Breakeven, parse_volumes, self_hosted_changes
    from sim.studies.plan import resolve_options

    exp = load_config(config, overrides, seed=seed, **kwargs)
    runner = Executor(executor, workers, address)
    vols = parse_volumes(volumes) if isinstance(volumes, str) else [float(v) for v in volumes]
    options = resolve_options(exp, None, None, replications, max_replications)
    if exp.workload.arrivals.kind == "trace":
        raise ValueError("breakeven scales workload.arrivals.mean_rps; trace arrivals cannot be scaled")
    names = list(exp.backends.pools())
    if pool is not None and pool not in names:
        raise ValueError(f"pool: unknown GPU pool {pool!r}; pools: {', '.join(names)}")
    sized = (pool or names[0]) if exp.backends.gpu_pools else None
    derive(exp, self_hosted_changes(exp, sized), Path.cwd())
    with runner.session() as session:
        doc: dict[str, Any] = Breakeven(
            exp, vols, options, max_servers, session, Path.cwd(), space=None, pool=sized
        ).run()
    return doc


__all__ = ["ConfigError", "SimulationResult", "breakeven", "load_config", "plan", "simulate"]
