"""`capsim run` end to end: the results folder the contract lists, reproducible from its own config.yaml,
`--json` output, and identical results for any worker count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sim.core.metrics import METRICS
from tests.test_config_errors import capsim

TINY = """\
name: tiny-run
seed: 5
replications: 4
horizon_h: 0.25
warmup_h: 0.05
workload:
  arrivals: {kind: diurnal, mean_rps: 2.0, peak_hour: 0.1}
  classes:
    - name: chat
      share: 0.7
      input_tokens: {dist: lognormal, median: 300, sigma: 0.8}
      output_tokens: {dist: geometric, mean: 40}
      slo_ttft_s: 1.0
    - name: batch
      share: 0.3
      input_tokens: {dist: constant, value: 1500}
      output_tokens: {dist: uniform, low: 10, high: 80}
      slo_ttft_s: 60
      timeout_s: 30
cache:
  response: {enabled: true, capacity: 200, distinct_prompts: 2000, zipf_s: 1.1}
routing: {policy: gpu_only}
backends:
  gpu_pool:
    servers: 2
    max_batch: 8
    iteration_s: {base: 0.01, per_seq: 0.001, per_prefill_token: 0.00001}
    cold_start_s: {dist: constant, value: 20}
output: {timeseries: true, report: false}
"""

SUMMARY_KEYS = {"mean", "ci95_low", "ci95_high", "p5", "p50", "p95"}
TIMESERIES_COLUMNS = {
    "replication",
    "minute",
    "arrivals",
    "in_flight",
    "queue_len",
    "busy_servers",
    "healthy_servers",
    "spend_usd",
}


def _run(config: Path, out: Path, *extra: str) -> Any:
    proc = capsim("run", str(config), "--out", str(out), "--quiet", *extra)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def _metric_rows(folder: Path) -> pd.DataFrame:
    df = pd.read_parquet(folder / "replications.parquet")
    return df[["replication", *METRICS]].sort_values("replication").reset_index(drop=True)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("cli-run")
    config = root / "tiny.yaml"
    config.write_text(TINY)
    out = root / "one-worker"
    proc = _run(config, out, "--workers", "1", "--json")
    return config, out, proc.stdout


def test_results_folder_has_the_contract_files(first_run: tuple[Path, Path, str]) -> None:
    _, out, _ = first_run
    for name in ("config.yaml", "summary.json", "replications.parquet", "replications.csv", "timeseries.parquet"):
        assert (out / name).is_file(), name
    assert not (out / ".partial").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["name"] == "tiny-run" and summary["seed"] == 5
    assert summary["replications"] == 4 and summary["horizon_h"] == 0.25
    for name in METRICS:
        assert set(summary["metrics"][name]) >= SUMMARY_KEYS, name

    reps = pd.read_parquet(out / "replications.parquet")
    assert sorted(reps["replication"]) == [0, 1, 2, 3]
    assert set(METRICS) <= set(reps.columns)
    csv = pd.read_csv(out / "replications.csv")
    pd.testing.assert_frame_equal(
        csv[["replication", *METRICS]].astype(float), reps[["replication", *METRICS]].astype(float), rtol=1e-12
    )
    for name in ("requests", "served", "ttft_p95_s", "cost_total_usd"):
        assert summary["metrics"][name]["mean"] == pytest.approx(reps[name].mean(), rel=1e-12)

    ts = pd.read_parquet(out / "timeseries.parquet")
    assert set(ts.columns) >= TIMESERIES_COLUMNS
    assert len(ts) == 4 * 15  # 4 replications x 15 simulated minutes
    assert sorted(ts["replication"].unique()) == [0, 1, 2, 3]
    for _, g in ts.groupby("replication"):
        assert g["minute"].tolist() == list(range(15))
    assert summary["metrics"]["requests"]["mean"] > 1000 and summary["metrics"]["cache_hits"]["mean"] > 0


def test_json_prints_only_the_summary(first_run: tuple[Path, Path, str]) -> None:
    _, out, stdout = first_run
    printed = json.loads(stdout)  # the whole of stdout is one JSON document
    written = json.loads((out / "summary.json").read_text())
    assert printed == written


def test_rerunning_the_written_config_reproduces_the_run(first_run: tuple[Path, Path, str]) -> None:
    _, out, _ = first_run
    again = out.parent / "rerun"
    _run(out / "config.yaml", again, "--workers", "1")
    pd.testing.assert_frame_equal(_metric_rows(out), _metric_rows(again), check_exact=True)
    assert (out / "config.yaml").read_text() == (again / "config.yaml").read_text()
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "timeseries.parquet"), pd.read_parquet(again / "timeseries.parquet"), check_exact=True
    )


def test_worker_count_gives_identical_summary(first_run: tuple[Path, Path, str]) -> None:
    config, out, _ = first_run
    two = out.parent / "two-workers"
    _run(config, two, "--workers", "2")
    one_summary = json.loads((out / "summary.json").read_text())
    two_summary = json.loads((two / "summary.json").read_text())
    assert one_summary["metrics"] == two_summary["metrics"]
    assert one_summary["breakdown"] == two_summary["breakdown"]
    pd.testing.assert_frame_equal(_metric_rows(out), _metric_rows(two), check_exact=True)
