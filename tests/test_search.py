"""Multi-dimensional `capsim plan`: the search agrees with brute force on fewer replications, the screens
are sound where the answer is known, the Pareto frontier, and the CLI's document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.app.cli import app
from sim.engine.executor import Executor
from sim.engine.targets import Target
from sim.studies.plan import Planner, PlanOptions, VaryRange, resolve_options
from sim.studies.screens import min_servers, server_capacity_rps
from sim.studies.search import Search, Space, exhaustive, pareto
from tests.planning_configs import load, mgc_config, write

KEY = "backends.gpu_pool.servers"
ONE = Executor(workers=1)
# a small space: two GPU types (same timing here, different prices) x batch 1 or 2 x 1..5 servers
SPACE = ["backends.gpu_pool.gpu=h100,a100", "backends.gpu_pool.max_batch=1,2", f"{KEY}=1..5"]


def test_space_parse() -> None:
    s = Space.parse(SPACE)
    assert s.searched == VaryRange(KEY, 1, 5, True)
    assert s.enumerated == (("backends.gpu_pool.gpu", ("h100", "a100")), ("backends.gpu_pool.max_batch", (1, 2)))
    assert s.num_columns == 4 and s.num_points() == 20
    assert s.columns()[1] == (("backends.gpu_pool.gpu", "h100"), ("backends.gpu_pool.max_batch", 2))
    assert Space.parse([f"{KEY}=2..9"]).enumerated == ()  # the one-dimensional form
    for bad in (
        [f"{KEY}=1..4", "backends.gpu_pool.max_batch=1..8"],  # two searched ranges
        [f"{KEY}=1..4", f"{KEY}=5,6"],  # a key twice
        ["backends.gpu_pool.gpu=h100,h100"],
        ["backends.gpu_pool.gpu="],
        [],
    ):
        with pytest.raises(ValueError):
            Space.parse(bad)


def test_search_finds_the_exhaustive_best_with_fewer_replications() -> None:
    """Brute force decides all 20 points by the same sequential rule on the same replications; the search
    (screens, galloping, bisection) must return the same cheapest point, on fewer replications."""
    exp = load(mgc_config(rps=4.0, horizon_h=0.05))
    space = Space.parse(SPACE)
    options = resolve_options(exp, None, None, 3, 6)
    doc = Search(exp, space, options, ONE).run().to_json()
    brute = exhaustive(exp, space, options, ONE)
    assert brute["points"] == 20
    assert doc["best"]["values"] == brute["best"]
    assert doc["monthly_cost_usd"] == brute["monthly_cost_usd"]
    # batch 2 halves the servers needed, and the a100 is the cheaper server-hour at the same speed
    assert brute["best"] == {"backends.gpu_pool.gpu": "a100", "backends.gpu_pool.max_batch": 2, KEY: 3}
    assert doc["replications_simulated"] < brute["replications_simulated"]
    assert doc["candidates_in_space"] == 20
    # every point the search simulated was decided as brute force decides it (common random numbers)
    decided = {json.dumps(d["values"], sort_keys=True): d["decision"] for d in brute["decisions"]}
    assert all(decided[json.dumps(e["values"], sort_keys=True)] == e["decision"] for e in doc["tried"])


def test_throughput_screen_reduces_to_the_stability_bound() -> None:
    """M/G/c at batch 1: a server completes 1 / 0.8 s = 1.25 requests/s, so 4 requests/s need more than 3.2
    servers; 1..3 servers are unstable (load >= 1) and are screened out unsimulated; 4 is simulated."""
    exp = load(mgc_config(rps=4.0, horizon_h=0.05))
    targets = [Target.parse("queue_wait_mean_s<=0.25")]
    assert server_capacity_rps(exp) == pytest.approx(1 / 0.8)
    assert min_servers(exp, targets) == 4
    planner = Planner(exp, VaryRange(KEY, 1, 12, True), PlanOptions(tuple(targets), 0.9, 3, 6), ONE)
    result = planner.search()
    assert sorted(result.screened) == [1, 2, 3]
    assert min(result.candidates) == 4 and result.value == 5  # Erlang C: 5 servers wait 0.07 s, 4 wait 0.6 s
    # the screen does not apply where a request can leave the queue: a timeout bounds the wait
    cfg = mgc_config(rps=4.0, horizon_h=0.05)
    cfg["workload"]["classes"][0]["timeout_s"] = 5.0
    assert min_servers(load(cfg), targets) is None
    # nor where requests can spill to the API
    assert min_servers(load(mgc_config(rps=4.0, routing={"policy": "overflow"})), targets) is None


def test_memory_screen_rules_out_a_model_that_does_not_fit() -> None:
    cfg = mgc_config(rps=1.0, horizon_h=0.05)
    pool = cfg["backends"]["gpu_pool"]
    del pool["iteration_s"]
    pool.update(gpu="l40s", model="llama-3.1-70b", max_batch=8)
    exp = load({**cfg, "backends": {**cfg["backends"], "gpu_pool": {**pool, "tensor_parallel": 4}}})
    space = Space.parse(["backends.gpu_pool.tensor_parallel=1,4", f"{KEY}=1..2"])
    options = resolve_options(exp, ["e2e_p95_s<=1000"], 0.5, 1, 1)
    doc = Search(exp, space, options, ONE).run().to_json()
    (screened,) = [s for s in doc["screened"] if s["values"] == {"backends.gpu_pool.tensor_parallel": 1}]
    assert screened["reason"].startswith("memory:")
    assert all(e["values"]["backends.gpu_pool.tensor_parallel"] == 4 for e in doc["tried"])


def _entry(cost: float, ttft: float, avail: float, name: str) -> dict:  # type: ignore[type-arg]
    return {
        "values": {"name": name},
        "monthly_cost_usd": cost,
        "monthly_cost_ci95": [cost, cost],
        "p_meet": 1.0,
        "p_meet_low": 0.9,
        "p_meet_high": 1.0,
        "decision": "meets",
        "gpu": "h100",
        "metrics": {"ttft_p95_s": {"mean": ttft, "ci95": None}, "availability": {"mean": avail, "ci95": None}},
    }


def test_pareto_keeps_exactly_the_non_dominated() -> None:
    targets = [Target.parse("ttft_p95_s<=2")]
    entries = [
        _entry(100, 3.0, 1.0, "cheap-slow"),
        _entry(200, 1.0, 1.0, "dear-fast"),
        _entry(250, 1.5, 1.0, "dominated"),  # dearer and slower than dear-fast
        _entry(150, 3.0, 0.99, "dominated too"),  # dearer and less available than cheap-slow, as slow
        _entry(300, 1.0, 1.0, "tie-but-dearer"),
    ]
    names = [f["values"]["name"] for f in pareto(entries, targets)]
    assert names == ["cheap-slow", "dear-fast"]


def test_cli_multi_dimensional_plan(tmp_path: Path) -> None:
    cfg = write(tmp_path, mgc_config(rps=4.0, horizon_h=0.05))
    args = ["plan", cfg, "--reps", "3", "--max-reps", "6", "--workers", "1", "--json", "--out", str(tmp_path / "p")]
    r = CliRunner().invoke(app, [*args, "--vary", SPACE[1], "--vary", f"{KEY}=1..5"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {"key", "value", "confidence", "monthly_cost_usd", "tried", "best", "pareto"} <= set(doc)
    assert doc["best"]["values"] == {"backends.gpu_pool.max_batch": 2, KEY: 3} and doc["value"] == 3
    lo, hi = doc["best"]["p_meet_wilson"]
    assert lo <= doc["best"]["p_meet"] <= hi
    assert all({"values", "decision", "p_meet", "replications"} <= set(e) for e in doc["tried"])
    assert doc["best"]["values"] in [f["values"] for f in doc["pareto"]]
    assert (tmp_path / "p" / "plan.json").exists() and (tmp_path / "p" / "frontier.png").stat().st_size > 1000
    # a bad value in one dimension is answered before any replication
    r = CliRunner().invoke(app, [*args[:-2], "--vary", "backends.gpu_pool.max_batch=1,0", "--vary", f"{KEY}=1..5"])
    assert r.exit_code == 2 and "max_batch" in r.output and "Traceback" not in r.output
