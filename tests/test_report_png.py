"""The report's PNGs drawn once (`style.to_png`: one Agg draw, the RGBA buffer written as `print_png` writes it)
are the bytes `Figure.savefig` writes (two draws: the constrained layout with rendering disabled, then the
raster), chart by chart: every chart of a small run's folder, and the plan and break-even charts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.app.cli import app
from sim.report import build_charts, charts_day, charts_frontier, charts_money, charts_plan, style
from sim.report.data import load

TINY = ["--set", "horizon_h=2", "--set", "workload.arrivals.mean_rps=0.5", "--workers", "1", "--quiet"]
PLAN = {
    "key": "backends.gpu_pool.servers",
    "value": 4,
    "confidence": 0.95,
    "monthly_cost_usd": 7855.0,
    "tried": [
        {"value": 2, "p_meet": 0.0, "replications": 20},
        {"value": 3, "p_meet": 0.55, "replications": 20},
        {"value": 4, "p_meet": 1.0, "replications": 40},
    ],
}
BREAKEVEN = {
    "volumes": [1e8, 1e9, 1e10],
    "api_monthly_usd": [500.0, 5000.0, 50000.0],
    "self_hosted_monthly_usd": [
        {"mean": 1964.0, "low": 1964.0, "high": 1964.0},
        {"mean": 3928.0, "low": 3900.0, "high": 3990.0},
        {"mean": 19640.0, "low": 19000.0, "high": 21000.0},
    ],
    "hybrid_monthly_usd": [480.0, None, 18000.0],
    "self_hosted_servers": [1, 2, 10],
    "breakeven_tokens_per_month": 6.5e8,
}


def _charts(folder: Path) -> dict[str, bytes]:
    return {c.slug: c.png for c in build_charts(load(folder))}


def test_drawn_once_is_savefig_byte_for_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    args = ["run", "experiments/default.yaml", "--reps", "2", "--out", str(run), *TINY]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (run / "plan.json").write_text(json.dumps(PLAN))
    (run / "breakeven.json").write_text(json.dumps(BREAKEVEN))
    once = _charts(run)
    assert {"day", "latency", "utilization", "bill", "spread", "plan", "breakeven"} <= set(once)
    for module in (style, charts_day, charts_frontier, charts_money, charts_plan):
        monkeypatch.setattr(module, "to_png", style.to_png_savefig)
    twice = _charts(run)
    assert set(once) == set(twice)
    for slug, png in once.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), slug
        assert png == twice[slug], slug
