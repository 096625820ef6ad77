"""Common random numbers: paired comparisons and the variance they remove."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.app.cli import app
from sim.engine.executor import Executor
from sim.studies.paired import compare, variance_ratio
from tests.planning_configs import load, mgc_config, write

KEY = "backends.gpu_pool.servers"


def test_variance_ratio_on_synthetic_pairs() -> None:
    rng = np.random.default_rng(0)
    common = rng.normal(0, 1, 200)
    a = common + rng.normal(0, 0.1, 200)
    b = common + 0.5 + rng.normal(0, 0.1, 200)
    b_ind = rng.normal(0, 1, 200) + 0.5 + rng.normal(0, 0.1, 200)
    vr = variance_ratio(a, b, b_ind)
    # Var(a - b') ~ 2.02, Var(a - b) ~ 0.02: a ratio near 100
    assert 50 < vr["ratio"] < 200
    assert vr["ratio_ci95_low"] < vr["ratio"] < vr["ratio_ci95_high"]
    assert variance_ratio(a[:2], b[:2], b_ind[:2])["ratio"] is None


def test_common_random_numbers_reduce_variance_of_difference() -> None:
    exp = load(mgc_config(rps=4.0, horizon_h=0.2))
    metrics = ["requests", "queue_wait_mean_s", "ttft_mean_s"]
    doc = compare(exp, KEY, 5, 6, 24, metrics, independent=True, executor=Executor(workers=2))
    req = doc["metrics"]["requests"]
    # the same requests on both sides: the paired difference of request counts is exactly zero
    assert req["paired"]["mean"] == 0 and req["paired"]["ci_low"] == 0 and req["paired"]["ci_high"] == 0
    assert req["variance_reduction"]["ratio"] is None  # nothing left to reduce
    for m in ("queue_wait_mean_s", "ttft_mean_s"):
        e = doc["metrics"][m]
        assert e["paired"]["ci_high"] < 0  # B - A: 6 servers wait less than 5, and the paired interval shows it
        vr = e["variance_reduction"]
        assert vr["ratio_ci95_low"] > 1.0, vr
        # a narrower interval for the same number of replications
        width = e["paired"]["ci_high"] - e["paired"]["ci_low"]
        width_ind = e["independent"]["ci_high"] - e["independent"]["ci_low"]
        assert width < width_ind


def test_cli_compare(tmp_path: Path) -> None:
    cfg = write(tmp_path, mgc_config(rps=4.0, horizon_h=0.1))
    r = CliRunner().invoke(
        app, ["paired", cfg, "--vary", f"{KEY}=5,6", "--reps", "4", "--metric", "ttft_mean_s", "--json"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["key"] == KEY and list(doc["metrics"]) == ["ttft_mean_s"]
    for bad in (["--vary", f"{KEY}=5"], ["--vary", f"{KEY}=5,6", "--metric", "nope"], ["--vary", "nokey=1,2"]):
        r = CliRunner().invoke(app, ["paired", cfg, *bad])
        assert r.exit_code == 2, (bad, r.output)


@pytest.mark.parametrize("reps", [2])
def test_compare_text_output(tmp_path: Path, reps: int) -> None:
    cfg = write(tmp_path, mgc_config(rps=4.0, horizon_h=0.05))
    r = CliRunner().invoke(app, ["paired", cfg, "--vary", f"{KEY}=5,6", "--reps", str(reps), "--independent"])
    assert r.exit_code == 0, r.output
    assert "paired difference" in r.stdout and "Var ratio" in r.stdout
