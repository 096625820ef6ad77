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
from tests.test_report import BREAKEVEN_DOC as BREAKEVEN
from tests.test_report import PLAN_DOC as PLAN

TINY = ["--set", "horizon_h=2", "--set", "workload.arrivals.mean_rps=0.5", "--workers", "1", "--quiet"]


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
