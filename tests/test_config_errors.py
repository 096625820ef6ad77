"""A user's config mistakes: `capsim validate` and `capsim run` exit 2 with one `dotted.path (line N): message`
per problem on stderr, and never a traceback. Runs the real command line in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VALID = ROOT / "experiments" / "validation" / "mg1.yaml"

BAD_SERVERS_AND_KEY = """\
name: bad-config
horizon_h: 0.1
workload:
  arrivals: {kind: constant, mean_rps: 1.0}
backends:
  gpu_pool:
    servers: -2
    max_batch: 4
    colour: blue
"""


def capsim(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    env.pop("CAPSIM_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "sim", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], *expected: str) -> list[str]:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    for text in expected:
        assert any(text in ln for ln in lines), f"{text!r} not in stderr:\n{proc.stderr}"
    return lines


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(BAD_SERVERS_AND_KEY)
    return p


@pytest.mark.parametrize("command", ["validate", "run"])
def test_negative_servers_and_unknown_key_both_reported(command: str, bad_config: Path, tmp_path: Path) -> None:
    args = [command, str(bad_config)]
    if command == "run":
        args += ["--out", str(tmp_path / "out"), "--quiet"]
    proc = capsim(*args)
    lines = assert_user_error(proc, "backends.gpu_pool.servers (line 7):", "backends.gpu_pool.colour (line 9):")
    servers = next(ln for ln in lines if ln.startswith("backends.gpu_pool.servers"))
    assert "-2" in servers and ">=" in servers
    assert "unknown key" in next(ln for ln in lines if ln.startswith("backends.gpu_pool.colour"))
    assert proc.stdout == ""
    if command == "run":
        assert not (tmp_path / "out").exists()  # nothing is written for a bad config


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    p = tmp_path / "syntax.yaml"
    p.write_text("name: x\nworkload:\n  arrivals: {kind: constant, mean_rps: 1\nrouting:\n  policy: gpu_only\n")
    proc = capsim("validate", str(p))
    lines = assert_user_error(proc, "YAML syntax error")
    assert any("(line " in ln for ln in lines)


def test_unknown_enum_value_lists_the_choices() -> None:
    proc = capsim("validate", "-", stdin="name: x\nrouting:\n  policy: gpu_first\n")
    lines = assert_user_error(proc, "routing.policy (line 3):", "gpu_first")
    assert "gpu_only" in lines[0] and "overflow" in lines[0]


def test_shares_must_sum_to_one() -> None:
    text = """\
name: x
workload:
  classes:
    - name: a
      share: 0.5
    - name: b
      share: 0.3
"""
    assert_user_error(capsim("validate", "-", stdin=text), "workload", "shares must sum to 1", "0.8")


def test_by_class_naming_an_unknown_class() -> None:
    text = """\
name: x
workload:
  classes:
    - name: chat
routing:
  policy: by_class
  by_class:
    chat: gpu
    nightly: api
"""
    assert_user_error(capsim("validate", "-", stdin=text), "routing.by_class.nightly (line 9):", "'nightly'")


def test_set_overrides_are_validated_and_located() -> None:
    proc = capsim(
        "validate",
        str(VALID),
        "--set",
        "backends.gpu_pool.servers=-1",
        "--set",
        "workload.arrivals.kind=weekly",
    )
    assert_user_error(proc, "backends.gpu_pool.servers (line ", "-1", "workload.arrivals.kind (line ", "'weekly'")
    assert_user_error(capsim("validate", str(VALID), "--set", "nokeyvalue"), "--set nokeyvalue", "KEY=VALUE")


def test_set_overrides_apply() -> None:
    proc = capsim("validate", str(VALID), "--set", "replications=3", "--set", "horizon_h=2", "--set", "seed=99")
    assert proc.returncode == 0, proc.stderr
    assert "3 replications x 2.0 h, seed 99" in proc.stdout
    # a value parses as a YAML scalar or flow collection
    proc = capsim("validate", str(VALID), "--set", "workload.classes.0.output_tokens={dist: geometric, mean: 5}")
    assert proc.returncode == 0, proc.stderr


def test_stdin_config() -> None:
    proc = capsim("validate", "-", stdin=VALID.read_text())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: validation-md-1")
    assert_user_error(capsim("validate", "-", stdin=BAD_SERVERS_AND_KEY), "backends.gpu_pool.servers (line 7):")


def test_missing_file_and_bad_arguments(tmp_path: Path) -> None:
    assert_user_error(capsim("validate", str(tmp_path / "nope.yaml")), "no such file")
    assert_user_error(capsim("run", str(VALID), "--reps", "0", "--out", str(tmp_path / "o")), "--reps")
    assert_user_error(capsim("run", str(VALID), "--no-such-option"), "--no-such-option")
    assert_user_error(capsim("run", str(VALID), "--executor", "ray", "--out", str(tmp_path / "o")), "--executor")


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_are_valid(path: Path) -> None:
    from sim.engine.loading import load_config

    exp = load_config(path)
    assert exp.name


def test_engine_options_are_checked_at_validate() -> None:
    text = """\
name: x
backends:
  gpu_pools:
    small:
      max_batch: 64
      scheduler: v1
      max_prefill_tokens: 32
"""
    assert_user_error(
        capsim("validate", "-", stdin=text), "backends.gpu_pools.small.max_prefill_tokens (line 7):", "max_batch (64)"
    )
    proc = capsim("validate", str(VALID), "--set", "backends.gpu_pool.scheduler=v2")
    assert_user_error(proc, "backends.gpu_pool.scheduler (line ", "'v2'")
    multistep_v1 = text.replace("max_prefill_tokens: 32", "num_scheduler_steps: 10")
    assert_user_error(
        capsim("validate", "-", stdin=multistep_v1), "backends.gpu_pools.small.num_scheduler_steps (line 7):", "v0"
    )
    proc = capsim("validate", str(VALID), "--set", "backends.gpu_pool.num_scheduler_steps=0")
    assert_user_error(proc, "backends.gpu_pool.num_scheduler_steps (line ", "must be >= 1")
