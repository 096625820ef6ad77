"""`capsim calibrate` and `backends.gpu_pool.profile` (backends/models/{bench_results,serving_fit,profile}.py).

* Round trip: vLLM-style result files simulated from a known profile (other seeds than the fit's) are fitted
  back to that profile within 2%.
* Re-fitting the shipped published H100 figures reproduces them and the catalog's Hopper factors; fitted as the
  runs were configured (--num-scheduler-steps 10) they are reproduced closer still.
* A profile is used by the pool, checked at `capsim validate` (path beside the config, clear errors).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from backends.gpu.catalog import EFFICIENCY, Efficiency, derived_iteration, iteration_model
from backends.models.bench_results import BenchFileError, BenchPoint, read_bench_file
from backends.models.profile import read_profile
from backends.models.serving_fit import pool_with, simulate_point
from sim.app.calibrate_command import pool_spec
from sim.app.cli import app
from sim.engine import yaml12
from tests.planning_configs import mgc_config

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "backends" / "models" / "published"
HOPPER = EFFICIENCY["hopper"]


def _vllm_json(p: BenchPoint, tpot_ms: float, ttft_ms: float, throughput: float) -> dict[str, Any]:
    """What `vllm bench serve --save-result` writes (the keys capsim reads, and a few it ignores)."""
    rate: Any = "inf" if math.isinf(p.request_rate) else p.request_rate
    return {
        "date": "20261201-000000",
        "backend": "vllm",
        "model_id": "meta-llama/Meta-Llama-3-8B",
        "num_prompts": p.completed,
        "request_rate": rate,
        "burstiness": 1.0,
        "max_concurrency": None,
        "duration": p.completed / throughput,
        "completed": p.completed,
        "total_input_tokens": round(p.input_mean * p.completed),
        "total_output_tokens": round(p.output_mean * p.completed),
        "request_throughput": throughput,
        "mean_ttft_ms": ttft_ms,
        "median_ttft_ms": ttft_ms,
        "mean_tpot_ms": tpot_ms,
        "median_tpot_ms": tpot_ms,
        "mean_itl_ms": tpot_ms,
    }


@pytest.mark.slow
def test_round_trip_recovers_a_known_profile_within_2_percent(tmp_path: Path) -> None:
    true = replace(HOPPER, overhead_s=4.0e-3, per_seq_s=30e-6)  # a slower engine than the catalog's
    spec = pool_spec("h100", "llama-3-8b", 1, 256, "bf16")
    pool = pool_with(spec, true)
    files = []
    runs = ((1.0, 200, 300, 150), (16.0, 600, 300, 150), (math.inf, 300, 300, 150), (math.inf, 300, 1000, 60))
    for k, (rate, n, i, o) in enumerate(runs):
        p = BenchPoint("synthetic", rate, n, None, float(i), float(o), {}, "constant")
        sim = simulate_point(pool, p, 100 + k, "constant", 1, seed=987)  # not the fit's seeds
        path = tmp_path / f"run{k}.json"
        path.write_text(json.dumps(_vllm_json(p, sim.tpot_ms, sim.ttft_ms, sim.throughput_rps)), encoding="utf-8")
        files.append(str(path))
    out = tmp_path / "profile.yaml"
    r = CliRunner().invoke(
        app, ["calibrate", *files, "--gpu", "h100", "--model", "llama-3-8b", "--samples", "1", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    prof = read_profile(out)
    assert prof.efficiency.overhead_s == pytest.approx(4.0e-3, rel=0.02)
    assert prof.efficiency.per_seq_s == pytest.approx(30e-6, rel=0.02)
    # the factors not fitted stay the family's; provenance names every input with its digest
    assert prof.efficiency.memory == HOPPER.memory and prof.fitted == ["overhead_s", "per_seq_s"]
    assert sorted(i.file for i in prof.inputs) == [f"run{k}.json" for k in range(4)]
    assert all(len(i.sha256) == 64 for i in prof.inputs)
    assert {row.quantity for row in prof.residuals if row.in_fit} == {"mean_tpot_ms", "throughput_rps"}
    assert all(abs(row.error) < 0.02 for row in prof.residuals if row.in_fit)


@pytest.mark.slow
def test_refit_of_the_published_h100_figures_reproduces_them(tmp_path: Path) -> None:
    """The shipped vLLM v0.6.0 H100 ShareGPT and decode-heavy figures, fitted again as the catalog's stage 2 was
    (benchmarks/calibrate_iteration.py: overhead_s, per_seq_s and the attention share): the factors land on the
    catalog's and the fitted figures within the documented residuals."""
    out = tmp_path / "h100.yaml"
    src = [str(PUBLISHED / f"vllm-v0.6.0_h100_llama-3-8b_{name}.csv") for name in ("sharegpt", "decode-heavy")]
    args = ["calibrate", *src, "--gpu", "h100", "--model", "llama-3-8b", "--lengths", "sharegpt"]
    r = CliRunner().invoke(app, [*args, "--fit", "overhead_s,per_seq_s,attention", "--out", str(out)])
    assert r.exit_code == 0, r.output
    prof = read_profile(out)
    assert prof.efficiency.overhead_s == pytest.approx(HOPPER.overhead_s, rel=0.10)
    assert prof.efficiency.per_seq_s == pytest.approx(HOPPER.per_seq_s, rel=0.25)  # a small term: loosely set
    assert prof.efficiency.attention == pytest.approx(HOPPER.attention, rel=0.10)
    fitted = [row for row in prof.residuals if row.in_fit]
    assert len(fitted) == 7  # ShareGPT: TPOT at 2, 8, 32 req/s; decode-heavy: at 16, 32; both all-at-once throughputs
    # docs/calibration.md: within 4% at 2, 8 and 16 req/s, 9% at 32 req/s, 16.4% on an all-at-once throughput
    for row in fitted:
        bound = {"2": 0.04, "8": 0.04, "16": 0.04, "32": 0.12, "inf": 0.17}[row.request_rate]
        assert abs(row.error) <= bound, row
    assert prof.inputs[0].notes and "vllm-project" in " ".join(prof.inputs[0].notes)


@pytest.mark.slow
def test_refit_as_the_published_runs_were_configured(tmp_path: Path) -> None:
    """The same fit with --num-scheduler-steps 10 (vLLM v0.6.0's runs): the published figures it fits are
    reproduced within about twice the residuals docs/calibration.md gives (finite-rate TPOT 4.4%, all-at-once
    throughput 6.9%), the attention share is identified (inside its bounds) and the profile records the steps."""
    out = tmp_path / "h100.yaml"
    src = [str(PUBLISHED / f"vllm-v0.6.0_h100_llama-3-8b_{name}.csv") for name in ("sharegpt", "decode-heavy")]
    args = ["calibrate", *src, "--gpu", "h100", "--model", "llama-3-8b", "--lengths", "sharegpt"]
    fit = ["--fit", "overhead_s,per_seq_s,attention", "--num-scheduler-steps", "10", "--out", str(out)]
    r = CliRunner().invoke(app, [*args, *fit])
    assert r.exit_code == 0, r.output
    prof = read_profile(out)
    assert prof.num_scheduler_steps == 10
    assert prof.efficiency.attention is not None and 0.3 < prof.efficiency.attention < 0.95
    fitted = [row for row in prof.residuals if row.in_fit]
    assert len(fitted) == 7
    for row in fitted:
        assert abs(row.error) <= (0.14 if row.request_rate == "inf" else 0.09), row


def _profile(tmp_path: Path, eff: Efficiency, gpu: str = "h100", family: str = "hopper") -> Path:
    from dataclasses import asdict

    doc = {
        "capsim_profile": 1,
        "gpu": gpu,
        "family": family,
        "model": "llama-3-8b",
        "tensor_parallel": 1,
        "max_batch": 256,
        "lengths": "constant",
        "samples": 1,
        "efficiency": asdict(eff),
        "fitted": ["overhead_s"],
        "loss": 0.0,
        "residuals": [],
        "inputs": [],
        "capsim_version": "test",
        "created_utc": "2026-12-01T00:00:00Z",
    }
    path = tmp_path / "profiles" / "mine.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml12.dump(doc), encoding="utf-8")
    return path


def _write_config(tmp_path: Path, pool: dict[str, Any]) -> Path:
    cfg = mgc_config(horizon_h=0.02, replications=1)
    cfg["backends"]["gpu_pool"] = {"servers": 1, "max_batch": 8, **pool}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml12.dump(cfg), encoding="utf-8")
    return path


def test_profile_key_drives_the_iteration_model(tmp_path: Path) -> None:
    mine = replace(HOPPER, overhead_s=6e-3, per_seq_s=40e-6)
    _profile(tmp_path, mine)
    cfg = _write_config(tmp_path, {"profile": "profiles/mine.yaml"})  # relative: read beside the config
    r = CliRunner().invoke(app, ["validate", str(cfg)])
    assert r.exit_code == 0, r.output
    from sim.engine.loading import load_config

    spec = load_config(cfg).backends.gpu_pool
    assert Path(spec.profile or "").is_absolute()
    assert iteration_model(spec) == derived_iteration(spec, mine)
    assert iteration_model(spec).base - derived_iteration(spec, HOPPER).base == pytest.approx(6e-3 - HOPPER.overhead_s)
    r = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text(encoding="utf-8"))
    assert resolved["backends"]["gpu_pool"]["profile"] == spec.profile


@pytest.mark.parametrize(
    ("setup", "pool", "message"),
    [
        ("none", {"profile": "nowhere.yaml"}, "cannot be read"),
        ("garbage", {"profile": "profiles/mine.yaml"}, "not valid YAML"),
        ("other", {"profile": "profiles/mine.yaml"}, "not a capsim profile"),
        ("ampere", {"profile": "profiles/mine.yaml"}, "efficiency factors are per GPU family"),
        (
            "ok",
            {"profile": "profiles/mine.yaml", "iteration_s": {"base": 0.01}},
            "profile and iteration_s both set",
        ),
    ],
)
def test_bad_profiles_are_refused_at_validate(tmp_path: Path, setup: str, pool: dict[str, Any], message: str) -> None:
    if setup == "ok":
        _profile(tmp_path, HOPPER)
    elif setup == "ampere":
        _profile(tmp_path, HOPPER, gpu="a100-80gb", family="ampere")
    elif setup == "garbage":
        path = _profile(tmp_path, HOPPER)
        path.write_text("efficiency: [1, 2\n", encoding="utf-8")
    elif setup == "other":
        _profile(tmp_path, HOPPER).write_text("name: an experiment\n", encoding="utf-8")
    cfg = _write_config(tmp_path, pool)
    r = CliRunner().invoke(app, ["validate", str(cfg)])
    assert r.exit_code == 2, r.output
    assert "backends.gpu_pool.profile" in r.output and message in r.output, r.output
    assert "Traceback" not in r.output


def test_result_files_json_and_csv(tmp_path: Path) -> None:
    doc = {
        "request_rate": "inf",
        "completed": 10,
        "duration": 2.0,
        "total_input_tokens": 1000,
        "total_output_tokens": 500,
        "mean_tpot_ms": 12.5,
        "input_lens": [100] * 9 + [100],
        "output_lens": [50] * 9 + [0],  # a failed request: dropped
    }
    (tmp_path / "a.json").write_text(json.dumps(doc), encoding="utf-8")
    (p,) = read_bench_file(tmp_path / "a.json").points
    assert math.isinf(p.request_rate) and p.throughput_rps == 5.0 and p.output_lens == (50,) * 9
    assert (p.input_mean, p.output_mean) == (100.0, 50.0)
    vllm_inf = '{"request_rate": Infinity, "completed": 1, "duration": 1, "total_input_tokens": 1, '
    (tmp_path / "b.json").write_text(vllm_inf + '"total_output_tokens": 1}', encoding="utf-8")
    assert math.isinf(read_bench_file(tmp_path / "b.json").points[0].request_rate)
    csv = "# measured on our cluster\nrequest_rate,completed,total_input_tokens,total_output_tokens,mean_tpot_ms\n"
    (tmp_path / "c.csv").write_text(csv + "4,100,20000,10000,9.5\n", encoding="utf-8")
    f = read_bench_file(tmp_path / "c.csv")
    assert f.notes == ["measured on our cluster"] and f.points[0].measured == {"mean_tpot_ms": 9.5}
    for bad, why in (
        ({**doc, "max_concurrency": 8}, "max_concurrency"),
        ({k: v for k, v in doc.items() if k != "completed"}, "missing completed"),
        ({**doc, "mean_tpot_ms": "fast"}, "mean_tpot_ms must be a number"),
    ):
        (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(BenchFileError, match=why):
            read_bench_file(tmp_path / "bad.json")


def test_calibrate_usage_errors_exit_2(tmp_path: Path) -> None:
    src = str(PUBLISHED / "vllm-v0.6.0_h100_llama-3-8b_sharegpt.csv")
    out = str(tmp_path / "p.yaml")
    runner = CliRunner()
    for extra, message in (
        (["--gpu", "h999", "--model", "llama-3-8b"], "unknown GPU"),
        (["--gpu", "h100", "--model", "llama-3-70b"], "does not fit"),
        (["--gpu", "h100", "--model", "mixtral-8x7b", "--tp", "2"], "mixture-of-experts"),
        (["--gpu", "h100", "--model", "llama-3-8b", "--fit", "warp_factor"], "cannot fit warp_factor"),
        (["--gpu", "h100", "--model", "llama-3-8b", "--lengths", "zipf"], "--lengths"),
    ):
        r = runner.invoke(app, ["calibrate", src, *extra, "--out", out])
        assert r.exit_code == 2 and message in r.output, (extra, r.output)
    missing = str(tmp_path / "missing.json")
    r = runner.invoke(app, ["calibrate", missing, "--gpu", "h100", "--model", "llama-3-8b", "--out", out])
    assert r.exit_code == 2 and "cannot read" in r.output
    assert not Path(out).exists()
