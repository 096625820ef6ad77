"""The report's bill: the stacked monthly bar has one segment per GPU pool and per paid API provider, and the
segments add up to the bill's GPU and API lines; the "by class" and "by path" panels split the same month."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from test_fleets import TWO_POOLS
from typer.testing import CliRunner

from sim.app.cli import app
from sim.report.charts_money import bill_chart, bill_stack, panel_table
from sim.report.data import load

FLEET = [
    "horizon_h=0.2",
    "warmup_h=0",
    "workload.classes.0.input_tokens={dist: uniform, low: 1, high: 600}",
    "workload.classes.1.input_tokens={dist: uniform, low: 1, high: 600}",
    "backends.apis={premium: {price_input_per_mtok_usd: 5.0, price_output_per_mtok_usd: 20.0}}",
    "routing.by_size=[{when: {input_tokens_gt: 550}, to: 'api:premium'}, {when: {input_tokens_gt: 500}, to: api}]",
]


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bill")
    cfg = root / "fleet.yaml"
    cfg.write_text(TWO_POOLS, encoding="utf-8")
    out = root / "run"
    args = ["run", str(cfg), "--reps", "2", "--workers", "1", "--quiet", "--out", str(out)]
    for o in FLEET:
        args += ["--set", o]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return out


def test_the_stacked_bill_has_a_segment_per_pool_and_provider(fleet_dir: Path) -> None:
    data = load(fleet_dir)
    stack = bill_stack(data)
    labels = [s[0] for s in stack]
    assert set(labels) == {"gpu:a", "gpu:b", "api:api", "api:premium"}, labels
    assert len({s[2] for s in stack}) == len(stack)  # one colour each
    gpu = sum(v for lbl, v, _ in stack if lbl.startswith("gpu:"))
    api = sum(v for lbl, v, _ in stack if lbl.startswith("api:"))
    assert gpu == pytest.approx(data.metric_mean("cost_tco_gpu_monthly_usd"), rel=1e-12)
    assert api == pytest.approx(data.metric_mean("cost_tco_api_monthly_usd"), rel=1e-12)
    for name in ("a", "b"):  # each pool's segment is its own month
        seg = next(v for lbl, v, _ in stack if lbl == f"gpu:{name}")
        assert seg == data.metric_mean(f"cost_gpu_monthly_usd.pool.{name}")
    # the providers split the API month as they split the span's API spend
    spans = {n: data.metric_mean(f"cost_api_usd.provider.{n}") or 0.0 for n in ("api", "premium")}
    premium = next(v for lbl, v, _ in stack if lbl == "api:premium")
    assert premium / api == pytest.approx(spans["premium"] / sum(spans.values()), rel=1e-12)
    assert bill_chart(data) is not None


def test_one_pool_and_one_provider_keep_the_plain_parts(tmp_path: Path) -> None:
    """The shorthand pool and backends.api alone: the bar's parts are the bill's lines (api, gpu, ...)."""
    from tests.gpu_support import chat_yaml

    cfg = tmp_path / "one.yaml"
    cfg.write_text(chat_yaml("one", 3, 1, 0.05, 1), encoding="utf-8")
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["run", str(cfg), "--workers", "1", "--quiet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    labels = [s[0] for s in bill_stack(load(out))]
    assert labels == ["gpu"]


def test_the_class_and_path_panels_split_the_same_month_by_part(fleet_dir: Path) -> None:
    """Each panel's api and gpu spend adds up to the bill's API and GPU months (API usage and GPU hours are scaled
    to a month by different factors: one blended factor moved dollars between the parts), and the GPU path is one
    bar per pool at that pool's month."""
    data = load(fleet_dir)
    month = {p: data.metric_mean(f"cost_tco_{p}_monthly_usd") for p in ("api", "gpu")}
    assert month["api"] and month["gpu"]
    for by in ("class", "path"):
        table = panel_table(data, by)
        for p in ("api", "gpu"):
            got = sum(parts.get(p, 0.0) for parts in table.values())
            assert got == pytest.approx(month[p], rel=1e-9), (by, p, table)
    path = panel_table(data, "path")
    assert "gpu" not in path
    for name in ("a", "b"):
        assert path[f"gpu:{name}"] == {"gpu": data.metric_mean(f"cost_gpu_monthly_usd.pool.{name}")}


def test_two_pool_charts_draw_without_layout_warnings(fleet_dir: Path) -> None:
    """A pool per row in the utilization chart: side by side, the second pool's axes collapsed (matplotlib's
    'constrained_layout not applied' warning) and the chart was unreadable."""
    from sim.report import build_charts

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        charts = build_charts(load(fleet_dir))
    assert charts
