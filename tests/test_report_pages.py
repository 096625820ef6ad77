"""Reports for every command: a sweep's page, compare --html, plan and breakeven pages; the utilization
panel's capacity used; count metrics never as percentages; readable latency ticks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from sim.app.cli import app
from tests.planning_configs import mgc_config, write

KEY = "backends.gpu_pool.servers"


def test_sweep_writes_a_report_and_capsim_report_rebuilds_it(tmp_path: Path) -> None:
    cfg = mgc_config(horizon_h=0.1, replications=2, output={"timeseries": True, "report": True})
    path = write(tmp_path, cfg)
    out = tmp_path / "sweep"
    r = CliRunner().invoke(app, ["run", path, "--sweep", f"{KEY}=3,4", "--out", str(out), "--quiet", "--workers", "1"])
    assert r.exit_code == 0, r.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<title>capsim sweep: mgc</title>" in page
    doc = json.loads((out / "sweep.json").read_text())
    # one row per point, each linking to its own report
    assert page.count("title='this point&#39;s report'") == len(doc["points"]) == 2
    for p in doc["points"]:
        assert (out / p["folder"] / "report.html").is_file()
    # a chart per target metric against the swept values
    assert (out / "plots" / "sweep_queue_wait_mean_s.png").is_file()
    (out / "report.html").unlink()
    r = CliRunner().invoke(app, ["report", str(out)])
    assert r.exit_code == 0 and (out / "report.html").is_file()


def test_compare_html_is_side_by_side(tmp_path: Path) -> None:
    runner = CliRunner()
    for servers in (4, 5):
        cfg = mgc_config(servers=servers, horizon_h=0.1, replications=2, output={"timeseries": True, "report": True})
        r = runner.invoke(app, ["run", write(tmp_path, cfg, f"{servers}.yaml"), "--out", str(tmp_path / str(servers))])
        assert r.exit_code == 0, r.output
    html_out = tmp_path / "cmp.html"
    r = runner.invoke(app, ["compare", str(tmp_path / "4"), str(tmp_path / "5"), "--html", "--html-out", str(html_out)])
    assert r.exit_code == 0, r.output
    page = html_out.read_text(encoding="utf-8")
    assert "<title>capsim compare: mgc vs mgc</title>" in page and "B - A" in page
    assert page.count("<figcaption>A: mgc</figcaption>") >= 2 and page.count("<figcaption>B: mgc</figcaption>") >= 2


def test_utilization_panel_shows_capacity_used(tmp_path: Path) -> None:
    """The capacity used per hour adds up to the run's gpu_capacity_utilization, and is far below busy."""
    cfg = mgc_config(servers=2, rps=1.0, horizon_h=0.5, replications=2, output={"timeseries": True, "report": True})
    cfg["backends"]["gpu_pool"]["max_batch"] = 8
    r = CliRunner().invoke(app, ["run", write(tmp_path, cfg), "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    ts = pd.read_parquet(tmp_path / "run" / "timeseries.parquet")
    reps = pd.read_parquet(tmp_path / "run" / "replications.parquet")
    for rep, g in ts.groupby("replication"):
        used = g["capacity_used_servers"].sum() / (2 * len(g))  # 2 servers paid every minute
        expected = float(reps.loc[reps["replication"] == rep, "gpu_capacity_utilization"].iloc[0])
        assert abs(used - expected) <= 1e-9 * max(1.0, expected), (used, expected)
        assert g["capacity_used_servers"].sum() < g["busy_servers"].sum()  # small batches: busy, not full
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "capacity used" in page
    assert (tmp_path / "run" / "plots" / "utilization.png").is_file()


def test_count_metrics_are_never_percentages() -> None:
    from sim.core.units import is_share
    from sim.report.page import fmt_metric

    assert not is_share("api_rate_limited") and not is_share("api_retries") and not is_share("semantic_false_hits")
    assert is_share("availability") and is_share("cache_hit_rate") and is_share("gpu_capacity_utilization")
    assert "%" not in fmt_metric("api_rate_limited", 88.5)
    assert fmt_metric("availability", 0.99995) == "99.9950%"


def test_latency_panels_have_readable_ticks() -> None:
    """A panel whose latencies sit within one decade (API-only e2e: 2-4 s) still gets labelled ticks."""
    from matplotlib.figure import Figure

    from sim.report.charts_day import _readable_log_ticks

    for lo, hi in ((2.1, 3.9), (0.03, 0.2), (1e-3, 10.0), (5.01, 5.3)):
        ax = Figure().subplots()
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
        _readable_log_ticks(ax)
        ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
        assert len(ticks) >= 3, (lo, hi, ticks)
        assert np.all(np.diff(ticks) > 0)


def test_plan_page_has_a_title_and_its_experiment(tmp_path: Path) -> None:
    path = write(tmp_path, mgc_config(rps=4.0, horizon_h=0.05))
    out = tmp_path / "plan"
    args = ["plan", path, "--vary", f"{KEY}=4..6", "--reps", "3", "--max-reps", "3", "--out", str(out), "--quiet"]
    r = CliRunner().invoke(app, [*args, "--workers", "1"])
    assert r.exit_code in (0, 3), r.output
    r = CliRunner().invoke(app, ["report", str(out)])
    assert r.exit_code == 0, r.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<title>capsim plan: mgc</title>" in page and "<h1>mgc: plan</h1>" in page
    assert "Resolved config (config.yaml)" in page
