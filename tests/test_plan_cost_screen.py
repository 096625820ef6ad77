"""`capsim plan --cost-screen`: the floor under a point's monthly cost, the same best as brute force on fewer
replications, every point it simulates decided as without it, and the default document without it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backends.gpu.catalog import server_price
from sim.app.cli import app
from sim.engine.executor import Executor
from sim.studies.plan import resolve_options
from sim.studies.screens import fixed_pool_monthly_usd
from sim.studies.search import Search, Space, exhaustive
from tests.planning_configs import load, mgc_config, write

KEY = "backends.gpu_pool.servers"
ONE = Executor(workers=1)
# two GPU types (same timing here, different prices) x batch 1 or 2 x 1..5 servers (tests/test_search.py's,
# the cheaper server first: the a100 columns set the bar the h100 columns are screened against)
SPACE = ["backends.gpu_pool.gpu=a100,h100", "backends.gpu_pool.max_batch=1,2", f"{KEY}=1..5"]
# the default document's keys (sim.studies.search.SearchResult.to_json before the option existed)
DEFAULT_KEYS = {
    "key", "value", "confidence", "monthly_cost_usd", "tried", "targets", "seed", "search_order",
    "interval_level", "monthly_cost_ci95", "dimensions", "best", "pareto", "best_by_gpu", "screened",
    "candidates_in_space", "replications_simulated", "columns",
}  # fmt: skip


def test_floor_is_the_fixed_pool_bill() -> None:
    """A fixed pool is paid servers x price x hours_per_month; the simulated monthly cost of a GPU-only
    point (no API, no other costs) is exactly that, up to rounding, and never below it."""
    exp = load(mgc_config(servers=3, rps=2.0, horizon_h=0.05))
    price = server_price(exp.backends.gpu_pool).usd_per_hour
    assert fixed_pool_monthly_usd(exp) == pytest.approx(3 * price * exp.costs.hours_per_month, rel=1e-12)
    for rep, m in ONE.metrics(exp, [0, 1]).items():
        assert m["monthly_cost_usd"] == pytest.approx(fixed_pool_monthly_usd(exp), rel=1e-9), rep
        assert m["monthly_cost_usd"] >= fixed_pool_monthly_usd(exp) * (1 - 1e-12)
    # an autoscaled pool is not a fixed one: no floor from it
    cfg = mgc_config(servers=3)
    cfg["backends"]["gpu_pool"]["autoscaler"] = {"enabled": True, "target_in_flight_per_server": 2, "max_servers": 8}
    assert fixed_pool_monthly_usd(load(cfg)) == 0.0


def test_cost_screen_finds_the_exhaustive_best_on_fewer_replications() -> None:
    """Brute force decides all 20 points; the search with the cost screen returns the same best (its whole
    evidence), simulates fewer replications than the search without it, and every point it simulates is
    the same entry as in the default search's document (each point is decided on its own replications)."""
    exp = load(mgc_config(rps=4.0, horizon_h=0.05))
    space = Space.parse(SPACE)
    options = resolve_options(exp, None, None, 3, 6)
    plain = Search(exp, space, options, ONE).run().to_json()
    screened = Search(exp, space, replace(options, cost_screen=True), ONE).run().to_json()
    brute = exhaustive(exp, space, replace(options, cost_screen=True), ONE)
    assert brute["points"] == 20
    assert screened["best"]["values"] == brute["best"] == plain["best"]["values"]
    assert screened["best"] == plain["best"] and screened["monthly_cost_usd"] == brute["monthly_cost_usd"]
    assert screened["replications_simulated"] < plain["replications_simulated"]
    by_values = {json.dumps(e["values"], sort_keys=True): e for e in plain["tried"]}
    assert all(by_values[json.dumps(e["values"], sort_keys=True)] == e for e in screened["tried"])
    assert screened["cost_screen"] is True
    assert any(c["screened"] or c["searched_up_to"] is not None for c in screened["columns"])
    # the default document is the one without the option: same keys, nothing of the cost screen
    assert set(plain) == DEFAULT_KEYS
    assert all(set(c) == {"values", "answer", "screened"} for c in plain["columns"])
    assert not any(s["reason"].startswith("cost:") for s in plain["screened"])


def test_cli_cost_screen(tmp_path: Path) -> None:
    cfg = write(tmp_path, mgc_config(rps=4.0, horizon_h=0.05))
    args = ["plan", cfg, "--reps", "3", "--max-reps", "6", "--workers", "1", "--json", "--quiet"]
    args += [a for d in SPACE for a in ("--vary", d)]
    plain = CliRunner().invoke(app, args)
    screened = CliRunner().invoke(app, [*args, "--cost-screen"])
    assert plain.exit_code == 0 and screened.exit_code == 0, screened.output
    a, b = json.loads(plain.stdout), json.loads(screened.stdout)
    assert "cost_screen" not in a and b["cost_screen"] is True
    assert a["best"] == b["best"] and len(b["tried"]) < len(a["tried"])
