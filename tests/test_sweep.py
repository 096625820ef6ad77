"""Sweeps: a folder per point, a table across points, paired differences, resume, the `sweep:` section."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.app.cli import app
from sim.app.run_command import run_experiment
from sim.app.sweep_command import run_sweep
from sim.engine.executor import Executor
from sim.engine.replication import simulate
from sim.engine.results import ResultsFolder, run_identity
from sim.engine.variants import derive
from sim.studies.sweep import expand, grid, point_dirname
from tests.planning_configs import load, mgc_config, write

KEY = "backends.gpu_pool.servers"

ONE = Executor(workers=1)


def _small(**kw):  # type: ignore[no-untyped-def]
    return mgc_config(replications=3, horizon_h=0.15, **kw)


def test_grid_order_and_names() -> None:
    g = grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(g) == 6
    assert g[0] == [("a", 1), ("b", "x")] and g[1] == [("a", 1), ("b", "y")] and g[-1] == [("a", 2), ("b", "z")]
    assert point_dirname(3, [(KEY, 5)]) == "003_backends.gpu_pool.servers=5"
    assert "/" not in point_dirname(0, [("name", "a/b c")])


def test_sweep_folder_table_and_crn(tmp_path: Path) -> None:
    exp = load(_small()).model_copy(update={"sweep": {KEY: [4, 5, 6]}})
    assert run_sweep(exp, out=tmp_path, executor=ONE, quiet=True) == 0
    table = pd.read_parquet(tmp_path / "sweep.parquet")
    assert list(table[KEY]) == [4, 5, 6]
    assert pd.read_csv(tmp_path / "sweep.csv").shape == table.shape
    assert {"queue_wait_mean_s", "queue_wait_mean_s.ci95_low", "queue_wait_mean_s.ci95_high", "p_meet"} <= set(
        table.columns
    )
    # more servers, less waiting
    assert table["queue_wait_mean_s"].is_monotonic_decreasing
    doc = json.loads((tmp_path / "sweep.json").read_text())
    assert doc["keys"] == [KEY] and len(doc["points"]) == 3
    # each point is a normal results folder, bit-identical to running that point alone
    for p in doc["points"]:
        folder = tmp_path / p["folder"]
        assert (folder / "summary.json").exists() and (folder / "replications.parquet").exists()
    alone = derive(load(_small()), [(KEY, 5)])
    assert run_experiment(alone, out=tmp_path / "alone", executor=ONE, quiet=True) == 0
    a = pd.read_parquet(tmp_path / "alone" / "replications.parquet").drop(columns="wall_s")
    b = pd.read_parquet(tmp_path / doc["points"][1]["folder"] / "replications.parquet").drop(columns="wall_s")
    assert (b[KEY] == 5).all()  # a point's rows carry its swept values
    pd.testing.assert_frame_equal(a, b.drop(columns=KEY))
    # common random numbers: every point sees exactly the same requests, so their difference is exactly 0
    for pair in doc["paired_vs_first"]:
        d = pair["differences"]["requests"]
        assert d["mean"] == 0 and d["ci_low"] == 0 and d["ci_high"] == 0
        w = pair["differences"]["queue_wait_mean_s"]
        assert w["ci_high"] < 0  # more servers: shorter waits, and the paired interval says so


def test_sweep_resume_skips_finished_points_and_reuses_checkpoints(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    exp = load(_small()).model_copy(update={"sweep": {KEY: [4, 5]}})
    assert run_sweep(exp, out=tmp_path, executor=ONE, quiet=True) == 0
    before = json.loads((tmp_path / "sweep.json").read_text())
    points = expand(exp, tmp_path)
    # point 1 was interrupted after replication 0: only its checkpoint remains
    p1 = points[1].folder
    for f in ("summary.json", "replications.parquet", "replications.csv"):
        (p1 / f).unlink()
    folder = ResultsFolder(p1)
    folder.store.identity = run_identity(points[1].exp)  # a checkpoint of that point's own run
    folder.checkpoint(simulate(points[1].exp, 0))
    calls: list[tuple[int, list[int]]] = []
    real = Executor.run

    def spy(self, e, reps, **kw):  # type: ignore[no-untyped-def]
        calls.append((e.backends.gpu_pool.servers, list(reps)))
        return real(self, e, reps, **kw)

    monkeypatch.setattr(Executor, "run", spy)
    assert run_sweep(exp, out=tmp_path, executor=ONE, quiet=True, resume=True) == 0
    assert calls == [(5, [1, 2])]  # point 0 skipped, point 1 resumed from its checkpoint
    after = json.loads((tmp_path / "sweep.json").read_text())
    strip = lambda d: [p["metrics"] for p in d["points"]]  # noqa: E731
    assert strip(after) == strip(before)
    # a different grid in the same folder is refused
    other = exp.model_copy(update={"sweep": {KEY: [4, 6]}})
    assert run_sweep(other, out=tmp_path, executor=ONE, quiet=True, resume=True) == 2


def test_cli_sweep_option_grid_and_section(tmp_path: Path) -> None:
    runner = CliRunner()
    cfg = write(tmp_path, _small())
    r = runner.invoke(
        app,
        ["run", cfg, "--sweep", f"{KEY}=4,5", "--sweep", "workload.arrivals.mean_rps=3,4", "--out", str(tmp_path / "g")]
        + ["--workers", "1", "--quiet", "--json"],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [tuple(p["values"].values()) for p in doc["points"]] == [(4, 3), (4, 4), (5, 3), (5, 4)]
    # the same grid from a `sweep:` section
    cfg2 = write(tmp_path, _small(sweep={KEY: [4, 5]}), "s.yaml")
    r = runner.invoke(app, ["run", cfg2, "--out", str(tmp_path / "s"), "--workers", "1", "--quiet", "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["points"]) == 2


@pytest.mark.parametrize(
    "args",
    [
        ["--sweep", f"{KEY}=4,-1"],
        ["--sweep", "backends.gpu_pool.no_such_key=1,2"],
        ["--sweep", f"{KEY}="],
    ],
)
def test_cli_sweep_bad_values_exit_2(tmp_path: Path, args: list[str]) -> None:
    r = CliRunner().invoke(app, ["run", write(tmp_path, _small()), "--out", str(tmp_path / "o"), *args])
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def test_validate_reports_bad_sweep_section(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["validate", write(tmp_path, _small(sweep={KEY: [3, -2]}))])
    assert r.exit_code == 2
    assert "sweep.backends.gpu_pool.servers" in r.output and "-2" in r.output


def test_each_swept_value_is_derived_once_per_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading checks every value of a 3 x 2 grid as its own point once (5 variants), and `run` without
    --sweep options does not check the loaded grid again."""
    import sim.engine.variants
    from sim.app.options import with_sweep

    calls: list[int] = []
    real = sim.engine.variants.derive
    monkeypatch.setattr(sim.engine.variants, "derive", lambda *a, **k: calls.append(1) or real(*a, **k))
    exp = load(_small(sweep={KEY: [3, 4, 5], "seed": [1, 2]}))
    assert len(calls) == 5
    calls.clear()
    assert with_sweep(exp, [], tmp_path) is exp and calls == []
    swept = with_sweep(exp, ["seed=7,8,9"], tmp_path)
    assert swept.sweep["seed"] == [7, 8, 9] and len(calls) == 6
