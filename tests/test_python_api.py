"""The Python API: the same numbers as the command line, every check applied, names kept with the docs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import sim
from sim.app.cli import app
from tests.planning_configs import mgc_config, write

ROOT = Path(__file__).resolve().parents[1]


def test_simulate_gives_the_numbers_the_cli_gives(tmp_path: Path) -> None:
    cfg = mgc_config(horizon_h=0.1, replications=3, output={"timeseries": True, "report": False})
    path = write(tmp_path, cfg)
    r = CliRunner().invoke(app, ["run", path, "--seed", "5", "--out", str(tmp_path / "cli"), "--quiet"])
    assert r.exit_code == 0, r.output
    res = sim.simulate(path, seed=5, workers=2)
    cli_summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert res.summary["metrics"] == cli_summary["metrics"]
    assert res.summary["targets"] == cli_summary["targets"]
    cli_reps = pd.read_parquet(tmp_path / "cli" / "replications.parquet").drop(columns="wall_s")
    pd.testing.assert_frame_equal(res.replications.drop(columns="wall_s"), cli_reps)
    pd.testing.assert_frame_equal(res.timeseries, pd.read_parquet(tmp_path / "cli" / "timeseries.parquet"))
    pd.testing.assert_frame_equal(res.hourly, pd.read_parquet(tmp_path / "cli" / "hourly.parquet"))
    saved = res.save(tmp_path / "saved")
    assert (saved / "report.html").is_file() and (saved / "summary.json").is_file()


def test_overrides_as_a_mapping_and_as_keywords(tmp_path: Path) -> None:
    cfg = mgc_config(horizon_h=0.05)
    a = sim.load_config(cfg, {"backends.gpu_pool.servers": 6}, replications=2, seed=9)
    b = sim.load_config(cfg, backends__gpu_pool__servers=6, replications=2, seed=9)
    c = sim.load_config(write(tmp_path, cfg), {"backends.gpu_pool.servers": 6, "replications": 2, "seed": 9})
    assert a == b == c
    assert a.backends.gpu_pool.servers == 6 and a.replications == 2 and a.seed == 9
    # an Experiment goes through the checks again; keyword overrides come after the mapping
    d = sim.load_config(a, {"backends.gpu_pool.servers": 2}, backends__gpu_pool__servers=3)
    assert d.backends.gpu_pool.servers == 3


def test_every_check_of_validate_applies() -> None:
    """A 70B model on one H100 validates as a pydantic model, but no entry point accepts it."""
    from sim.config.experiment import Experiment

    bad = {"backends": {"gpu_pool": {"gpu": "h100", "model": "llama-3-70b", "tensor_parallel": 1}}}
    Experiment.model_validate(bad)  # the bare model cannot see the catalog
    for call in (
        lambda: sim.load_config(bad),
        lambda: sim.simulate(bad, replications=1),
        lambda: sim.simulate(mgc_config(), backends__gpu_pool__model="llama-3-70b", backends__gpu_pool__gpu="h100"),
        lambda: sim.plan(bad, "backends.gpu_pool.servers=1..4"),
    ):
        with pytest.raises(sim.ConfigError) as info:
            call()
        assert any(p.path.startswith("backends.gpu_pool") and "does not fit" in p.message for p in info.value.problems)
    with pytest.raises(sim.ConfigError) as info:
        sim.load_config(mgc_config(), {"routing.max_queue": 3})
    assert "routing.overflow.max_queue" in str(info.value)


def test_plan_matches_the_cli(tmp_path: Path) -> None:
    cfg = mgc_config(rps=4.0, horizon_h=0.1)
    doc = sim.plan(cfg, "backends.gpu_pool.servers=3..6", replications=4, max_replications=8, workers=1)
    path = write(tmp_path, cfg)
    r = CliRunner().invoke(
        app, ["plan", path, "--vary", "backends.gpu_pool.servers=3..6", "--reps", "4", "--max-reps", "8", "--json"]
    )
    assert r.exit_code in (0, 3), r.output
    assert doc == json.loads(r.output)


def _documented_names() -> set[str]:
    text = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    return set(re.findall(r"^### `sim\.(\w+)", text, re.M))


def test_all_is_what_the_docs_list() -> None:
    assert set(sim.__all__) == _documented_names()
    for name in sim.__all__:
        assert getattr(sim, name) is not None
    with pytest.raises(AttributeError):
        _ = sim.no_such_name  # type: ignore[attr-defined]


def test_import_sim_is_light() -> None:
    heavy = "('pandas', 'numpy', 'simpy', 'pydantic', 'yaml')"
    code = f"import sys, sim; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_notebook_example_runs(tmp_path: Path) -> None:
    env = dict(os.environ, CAPSIM_EXAMPLE_QUICK="1")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "notebook.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "peak-hour p95 TTFT" in proc.stdout and "refused: backends.gpu_pool" in proc.stdout
    assert "report.html" in proc.stdout
