"""The Dask executor: bundles, bit-identical results to the local pool, streaming, the CLI option."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.engine.dask_cluster import make_bundles
from sim.engine.executor import Executor
from tests.planning_configs import load, mgc_config, write


@given(st.lists(st.integers(0, 10_000), unique=True, max_size=200), st.integers(1, 16), st.integers(1, 8))
def test_bundles_cover_every_replication_once(reps: list[int], workers: int, per: int) -> None:
    bundles = make_bundles(reps, workers, per)
    assert [r for b in bundles for r in b] == reps
    assert all(b for b in bundles)
    if reps:
        assert len(bundles) <= workers * per
        assert max(map(len, bundles)) - min(map(len, bundles)) <= max(map(len, bundles))


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One local cluster (2 single-threaded worker processes) for the module: starting one takes seconds."""
    pytest.importorskip("distributed")
    from sim.engine.dask_cluster import local_cluster

    with local_cluster(2) as address:
        yield address


def test_dask_matches_local_pool_and_streams(cluster: str) -> None:
    from sim.engine.dask_cluster import run_on_dask

    exp = load(mgc_config(servers=5, horizon_h=0.1))
    reps = list(range(8))
    local = {r.replication: r.metrics for r in Executor(workers=2).run(exp, reps)}
    stream = run_on_dask(exp, reps, 2, cluster)
    first = next(stream)  # results stream: the first arrives before the rest are asked for
    rest = list(stream)
    # through the runner, as `capsim run --executor dask --address ADDR` does
    again = {r.replication: r.metrics for r in Executor("dask", address=cluster).run(exp, [5, 1])}
    dask = {r.replication: r.metrics for r in [first, *rest]}
    assert sorted(dask) == reps
    assert dask == local  # bit-identical metrics, whatever worker ran which bundle
    assert again == {5: local[5], 1: local[1]}


def test_cli_executor_dask_writes_identical_results(tmp_path: Path, cluster: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    import sim.engine.dask_cluster as dx
    from sim.app.cli import app

    started: list[int] = []

    @contextmanager
    def reuse(workers: int) -> Iterator[str]:  # no address given: the executor asks for a local cluster
        started.append(workers)
        yield cluster

    monkeypatch.setattr(dx, "local_cluster", reuse)

    cfg = write(tmp_path, mgc_config(servers=5, horizon_h=0.1))
    runner = CliRunner()
    for name, extra in (("local", []), ("dask", ["--executor", "dask"])):
        r = runner.invoke(
            app, ["run", cfg, "--reps", "6", "--workers", "2", "--quiet", "--out", str(tmp_path / name), *extra]
        )
        assert r.exit_code == 0, r.output
    assert started == [2]
    a = pd.read_parquet(tmp_path / "local" / "replications.parquet").drop(columns="wall_s")
    b = pd.read_parquet(tmp_path / "dask" / "replications.parquet").drop(columns="wall_s")
    pd.testing.assert_frame_equal(a, b)
    # a sweep asks for one local cluster for all its points
    r = runner.invoke(
        app,
        ["run", cfg, "--reps", "3", "--workers", "2", "--quiet", "--executor", "dask"]
        + ["--sweep", "backends.gpu_pool.servers=5,6", "--out", str(tmp_path / "sweep")],
    )
    assert r.exit_code == 0, r.output
    assert started == [2, 2]
    c = pd.read_parquet(tmp_path / "sweep" / "points" / "000_backends.gpu_pool.servers=5" / "replications.parquet")
    assert (c["backends.gpu_pool.servers"] == 5).all()  # a sweep point's rows carry its values
    pd.testing.assert_frame_equal(c.drop(columns=["wall_s", "backends.gpu_pool.servers"]), a.iloc[:3])


def test_multi_dimensional_plan_is_identical_on_dask(cluster: str) -> None:
    """The search's decisions depend only on replications' metrics: the local pool and Dask give the same
    document, point for point."""
    from sim.studies.plan import resolve_options
    from sim.studies.search import Search, Space

    exp = load(mgc_config(rps=4.0, horizon_h=0.05))
    space = Space.parse(["backends.gpu_pool.max_batch=1,2", "backends.gpu_pool.servers=1..5"])
    options = resolve_options(exp, None, None, 3, 6)
    local = Search(exp, space, options, Executor(workers=2)).run().to_json()
    dask = Search(exp, space, options, Executor("dask", address=cluster)).run().to_json()
    assert dask == local and local["best"] is not None
