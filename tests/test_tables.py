"""Tables people can union: every Parquet table carries the run's identity; counts are integers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from sim.app.cli import app
from tests.planning_configs import mgc_config, write

KEY = "backends.gpu_pool.servers"
TABLES = ("replications", "timeseries", "hourly", "requests")


def test_every_table_carries_the_run_identity_and_counts_are_integers(tmp_path: Path) -> None:
    cfg = mgc_config(horizon_h=0.1, replications=2, output={"timeseries": True, "report": False, "requests": True})
    path = write(tmp_path, cfg)
    out = tmp_path / "sweep"
    r = CliRunner().invoke(app, ["run", path, "--sweep", f"{KEY}=3,4", "--out", str(out), "--quiet", "--workers", "1"])
    assert r.exit_code == 0, r.output
    points = sorted((out / "points").iterdir())
    assert len(points) == 2
    for table in TABLES:
        frames = [pd.read_parquet(p / f"{table}.parquet") for p in points]
        for servers, df in zip((3, 4), frames, strict=True):
            assert list(df.columns[:4]) == ["experiment", "seed", KEY, "replication"], (table, list(df.columns))
            assert (df["experiment"] == "mgc").all() and (df["seed"] == 3).all() and (df[KEY] == servers).all()
        both = pd.concat(frames, ignore_index=True)  # the union keeps every row told apart
        keys = ["experiment", "seed", KEY, "replication"] + {"timeseries": ["minute"], "hourly": ["hour"]}.get(
            table, ["request"] if table == "requests" and "request" in both.columns else []
        )
        if table != "requests":
            assert not both.duplicated(keys).any(), table
        assert set(both[KEY]) == {3, 4} and set(both["replication"]) == {0, 1}
    reps = pd.read_parquet(points[0] / "replications.parquet")
    for col in ("requests", "served", "tokens_in", "api_rate_limited", "requests.class.default", "num_events"):
        assert str(reps[col].dtype) in ("int64", "Int64"), (col, reps[col].dtype)
    assert reps["availability"].dtype.kind == "f" and reps["monthly_cost_usd"].dtype.kind == "f"
    ts = pd.read_parquet(points[0] / "timeseries.parquet")
    assert ts["arrivals"].dtype == "int64" and ts["minute"].dtype == "int64"
    hourly = pd.read_parquet(points[0] / "hourly.parquet")
    assert str(hourly["requests"].dtype) in ("int64", "Int64")


def test_a_single_run_has_experiment_and_seed(tmp_path: Path) -> None:
    path = write(tmp_path, mgc_config(horizon_h=0.05, replications=1, output={"timeseries": True, "report": False}))
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["run", path, "--out", str(out), "--quiet", "--seed", "11"])
    assert r.exit_code == 0, r.output
    for table in ("replications", "timeseries", "hourly"):
        df = pd.read_parquet(out / f"{table}.parquet")
        assert list(df.columns[:3]) == ["experiment", "seed", "replication"]
        assert (df["seed"] == 11).all()
    csv = pd.read_csv(out / "replications.csv")
    assert list(csv.columns[:3]) == ["experiment", "seed", "replication"]
