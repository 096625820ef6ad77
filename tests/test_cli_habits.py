"""What a command-line user expects: --version, flags shown as flags, one sign for differences, dotted
"did you mean" suggestions, progress within a replication, one unit style."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sim.app.cli import app
from sim.config.suggest import suggest
from sim.core.units import fmt_count, fmt_share, fmt_usd_short
from sim.engine import live
from sim.engine.executor import Executor
from sim.engine.replication import simulate
from tests.planning_configs import load, mgc_config, write

KEY = "backends.gpu_pool.servers"


def test_version() -> None:
    from sim.core.version import __version__

    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"capsim {__version__}"


def test_help_shows_flags_as_flags() -> None:
    for cmd in ("run", "plan", "breakeven", "compare", "paired", "report", "validate"):
        r = CliRunner().invoke(app, [cmd, "--help"], terminal_width=120)
        assert r.exit_code == 0, r.output
        assert "<bool>" not in r.output, (cmd, r.output)
    out = CliRunner().invoke(app, ["run", "--help"], terminal_width=120).output
    assert "--json" in out and "KEY=VALUE" in out and "DIR" in out


def test_suggestions_are_full_dotted_paths() -> None:
    assert suggest(["routing", "max_queue"]) == "routing.overflow.max_queue"
    assert suggest(["backends", "gpu_pool", "sever"]) == "backends.gpu_pool.servers"
    assert suggest(["workload", "classes", 0, "slo_ttf_s"]) == "workload.classes.0.slo_ttft_s"
    assert suggest(["backends", "apis", "cheap", "price_inpt_per_mtok_usd"]) == (
        "backends.apis.cheap.price_input_per_mtok_usd"
    )
    assert suggest(["foo"]) is None  # nothing close: no guess


def test_unknown_key_from_set_names_the_override_not_a_line(tmp_path: Path) -> None:
    cfg = write(tmp_path, mgc_config())
    r = CliRunner().invoke(app, ["validate", cfg, "--set", "foo.bar=1", "--set", "routing.max_queue=3"])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    foo = next(ln for ln in lines if "foo" in ln)
    assert foo.startswith("--set foo.bar=1: foo: unknown key") and "line" not in foo and "did you mean" not in foo
    mq = next(ln for ln in lines if "max_queue" in ln)
    assert "did you mean 'routing.overflow.max_queue'?" in mq


def test_compare_and_paired_agree_on_the_sign(tmp_path: Path) -> None:
    """B - A in both: the same seeds and replications give the very same paired difference."""
    cfg_a = write(tmp_path, mgc_config(servers=4, rps=4.0, horizon_h=0.1, replications=3), "a.yaml")
    cfg_b = write(tmp_path, mgc_config(servers=5, rps=4.0, horizon_h=0.1, replications=3), "b.yaml")
    runner = CliRunner()
    for cfg, out in ((cfg_a, "A"), (cfg_b, "B")):
        r = runner.invoke(app, ["run", cfg, "--out", str(tmp_path / out), "--quiet", "--workers", "1"])
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["compare", str(tmp_path / "A"), str(tmp_path / "B"), "--json"])
    assert r.exit_code == 0, r.output
    cmp_doc = json.loads(r.output)
    r = runner.invoke(
        app, ["paired", cfg_a, "--vary", f"{KEY}=4,5", "--reps", "3", "--metric", "queue_wait_mean_s", "--json"]
    )
    assert r.exit_code == 0, r.output
    paired_doc = json.loads(r.output)
    assert cmp_doc["difference"] == paired_doc["difference"] == "b - a"
    d_cmp = cmp_doc["metrics"]["queue_wait_mean_s"]["diff"]["mean"]
    d_paired = paired_doc["metrics"]["queue_wait_mean_s"]["paired"]["mean"]
    assert d_cmp < 0  # five servers (B) wait less than four (A)
    assert abs(d_cmp - d_paired) <= 1e-12 * max(1.0, abs(d_cmp))


def test_a_replication_reports_its_progress_and_results_do_not_change() -> None:
    exp = load(mgc_config(horizon_h=3.0, rps=1.0))
    seen: list[tuple[int, float]] = []
    with live.reporting_to(lambda r, f: seen.append((r, f))):
        told = simulate(exp, 2)
    assert [f for _, f in seen] == [k / 3 for k in range(1, 4)] and {r for r, _ in seen} == {2}
    silent = simulate(exp, 2)
    assert told.metrics == silent.metrics


def test_parallel_runs_report_partial_progress() -> None:
    exp = load(mgc_config(horizon_h=2.0, rps=2.0))
    partials: list[float] = []
    got = sorted(r.replication for r in Executor(workers=2).run(exp, range(4), on_partial=partials.append))
    assert got == [0, 1, 2, 3]
    assert partials and all(0.0 <= p <= 4.0 for p in partials)


def test_one_unit_style() -> None:
    assert [fmt_count(v) for v in (1e9, 2.5e8, 12_345)] == ["1B", "250M", "12.3k"]
    assert [fmt_usd_short(v) for v in (6000, 12_500, 1.2e6, 0)] == ["$6k", "$12.5k", "$1.2M", "$0"]
    # shares near 1 keep their nines: the command line showed availability 0.99995 as "1"
    assert fmt_share(0.99995) == "0.999950" and fmt_share(1.0) == "1" and fmt_share(0.9219) == "0.9219"
