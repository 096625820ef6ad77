"""Every kind of malformed config: exit 2, one located line per problem, no traceback, nothing executed."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCATED = re.compile(r"^\S.* \(line \d+\): \S.*$")

BASE = """\
name: malformed
seed: 1
replications: 2
horizon_h: 0.1
workload:
  arrivals: {kind: constant, mean_rps: 1.0}
  classes:
    - name: chat
      share: 0.7
      input_tokens: {dist: lognormal, median: 600, sigma: 0.9}
      output_tokens: {dist: geometric, mean: 200}
    - name: batch
      share: 0.3
      input_tokens: {dist: constant, value: 4000}
      output_tokens: {dist: geometric, mean: 300}
routing:
  policy: gpu_only
backends:
  gpu_pool: {servers: 2, gpu: h100, model: llama-3-8b}
output: {report: false}
"""


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


# (case id, config text or bytes, extra argv, substring the located line must start with)
CASES: list[tuple[str, str | bytes, list[str], str]] = [
    ("wrong type", edit("replications: 2", "replications: many"), [], "replications (line 3)"),
    ("wrong type nested", edit("servers: 2", "servers: [2]"), [], "backends.gpu_pool.servers (line 19)"),
    ("out of range", edit("servers: 2", "servers: -2"), [], "backends.gpu_pool.servers (line 19)"),
    ("nan", edit("mean_rps: 1.0", "mean_rps: .nan"), [], "workload.arrivals.mean_rps (line 6)"),
    ("inf", edit("horizon_h: 0.1", "horizon_h: .inf"), [], "horizon_h (line 4)"),
    ("-inf string", edit("share: 0.7", "share: -.inf"), [], "workload.classes.0.share (line 9)"),
    ("unknown key", edit("seed: 1", "seed: 1\nreplicatoins: 5"), [], "replicatoins (line 3)"),
    ("unknown nested key", edit("servers: 2,", "servers: 2, gpus: 8,"), [], "backends.gpu_pool.gpus (line 19)"),
    ("unknown enum", edit("policy: gpu_only", "policy: gpu_first"), [], "routing.policy (line 17)"),
    ("unknown weekday", edit("seed: 1", "seed: 1\nstart_weekday: monday"), [], "start_weekday (line 3)"),
    ("unknown dist", edit("dist: geometric, mean: 200", "dist: zipf, s: 2"), [], "workload.classes.0.output_tokens"),
    ("dist without kind", edit("{dist: geometric, mean: 200}", "{mean: 200}"), [], "workload.classes.0.output_tokens"),
    ("unknown gpu", edit("gpu: h100", "gpu: b900"), [], "backends.gpu_pool.gpu (line 19)"),
    ("unknown model", edit("model: llama-3-8b", "model: gpt-9"), [], "backends.gpu_pool.model (line 19)"),
    ("model does not fit", edit("gpu: h100, model: llama-3-8b", "gpu: l40s, model: llama-3-70b"), [], "backends"),
    (
        "missing trace file",
        edit("{kind: constant, mean_rps: 1.0}", "{kind: trace, file: no-such-trace.csv}"),
        [],
        "workload.arrivals.file (line 6)",
    ),
    (
        "missing empirical file",
        edit("{dist: constant, value: 4000}", "{dist: empirical, file: nope.csv, column: x}"),
        [],
        "workload.classes.1.input_tokens.file (line 14)",
    ),
    (
        "routing names unknown class",
        edit("policy: gpu_only", "policy: by_class\n  by_class: {chat: gpu, batch: api, vip: api}"),
        [],
        "routing.by_class.vip (line 18)",
    ),
    (
        "by_class leaves a class out",
        edit("policy: gpu_only", "policy: by_class\n  by_class: {chat: gpu}"),
        [],
        "routing.by_class (line 18)",
    ),
    (
        "unknown api provider",
        edit("policy: gpu_only", "policy: overflow\n  overflow: {target: 'api:cheap'}"),
        [],
        "routing.overflow.target (line 18)",
    ),
    ("shares do not sum to 1", edit("share: 0.3", "share: 0.2"), [], "workload.classes (line 7)"),
    ("duplicate class names", edit("name: batch", "name: chat"), [], "workload.classes (line 7)"),
    ("warmup past horizon", edit("horizon_h: 0.1", "horizon_h: 0.1\nwarmup_h: 1"), [], "warmup_h (line 5)"),
    ("hourly needs 24", edit("{kind: constant, mean_rps: 1.0}", "{kind: hourly, multipliers: [1, 2]}"), [], "work"),
    ("uniform high < low", edit("{dist: constant, value: 4000}", "{dist: uniform, low: 9, high: 1}"), [], "work"),
    ("unknown target metric", BASE + "plan: {targets: ['latency<=2']}\n", [], "plan.targets (line 21)"),
    ("negative price", edit("servers: 2,", "servers: 2, price_per_server_hour_usd: -1,"), [], "backends.gpu_pool"),
    ("zero timeout", edit("share: 0.3", "share: 0.3\n      timeout_s: 0"), [], "workload.classes.1.timeout_s"),
    ("yaml syntax", edit("{servers: 2,", "{servers: [2,"), [], "<document> (line"),
    ("yaml tab indent", edit("  policy: gpu_only", "\tpolicy: gpu_only"), [], "<document> (line 17)"),
    ("yaml bad indent", edit("  policy: gpu_only", "  policy: gpu_only\n    fallback: none"), [], "<document>"),
    ("duplicate key", edit("seed: 1", "seed: 1\nseed: 2"), [], "seed (line 3)"),
    (
        "python object tag",
        edit("replications: 2", "replications: !!python/object/apply:os.system ['touch /tmp/capsim-pwned']"),
        [],
        "replications (line 3)",  # a refused tag is reported at its dotted path
    ),
    ("python name tag", edit("seed: 1", "seed: !!python/name:os.system"), [], "seed (line 2)"),
    ("custom tag", edit("seed: 1", "seed: !seed 1"), [], "seed (line 2)"),
    ("unhashable key", BASE + "? [a, b]\n: 1\n", [], "<document> (line"),
    ("non-mapping list", "- 1\n- 2\n", [], "<document> (line 1)"),
    ("non-mapping scalar", "just words\n", [], "<document> (line 1)"),
    ("empty file", "", [], "<document> (line 1)"),
    ("comments only", "# nothing here\n\n", [], "<document> (line 1)"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", [], "c.yaml (line 1)"),
    ("nul in text", BASE + "x: \x00\n", [], "<document> (line 21)"),
    ("latin-1", BASE.encode() + "name: caf\xe9\n".encode("latin-1"), [], "c.yaml (line 21)"),
    ("control char", BASE + "name: a\x07b\n", [], "<document> (line 21)"),
    ("absurd replications", edit("replications: 2", "replications: 1000000000000"), [], "replications (line 3)"),
    ("absurd horizon", edit("horizon_h: 0.1", "horizon_h: 1000000000"), [], "horizon_h (line 4)"),
    ("absurd rate", edit("mean_rps: 1.0", "mean_rps: 1.0e+30"), [], "workload.arrivals.mean_rps (line 6)"),
    (
        "absurd product of bounded sizes",
        edit("mean_rps: 1.0", "mean_rps: 1000000").replace("horizon_h: 0.1", "horizon_h: 8000"),
        [],
        "workload.arrivals.mean_rps (line 6)",
    ),
    ("absurd tokens", edit("median: 600", "median: 1000000000"), [], "workload.classes.0.input_tokens (line 10)"),
    (
        "absurd request rows",
        edit("output: {report: false}", "output: {report: false, requests: true}")
        .replace("horizon_h: 0.1", "horizon_h: 2000")
        .replace("mean_rps: 1.0", "mean_rps: 100"),
        [],
        "output.requests (line 20)",
    ),
    (
        "absurd cache",
        edit("mean_rps: 1.0", "mean_rps: 100000").replace("horizon_h: 0.1", "horizon_h: 24")
        + "cache: {response: {enabled: true, capacity: 1000000000, distinct_prompts: 10000000000}}\n"
        "limits: {max_events: 1.0e+15}\n",
        [],
        "cache.response.capacity (line 21)",
    ),
    ("huge integer literal", edit("seed: 1", "seed: " + "9" * 5000), [], "<document> (line 2)"),
    (
        "billion laughs",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)),
        [],
        "<document> (line 1)",
    ),
    ("deep nesting", "a: 1\nb: " + "[" * 5000 + "]" * 5000 + "\n", [], "<document> (line 2)"),
    ("deep indentation", "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 400)), [], "<document> (line"),
    ("set without =", BASE, ["--set", "replications"], "--set replications"),
    ("set wrong type", BASE, ["--set", "backends.gpu_pool.servers=abc"], "backends.gpu_pool.servers (line 19)"),
    ("set unknown key", BASE, ["--set", "backends.gpu_pool.serverz=3"], "backends.gpu_pool.serverz (line 19)"),
]


def _cli(args: list[str], cwd: Path) -> tuple[int, str, str]:
    from sim.app import cli

    err, out = io.StringIO(), io.StringIO()
    argv, here = sys.argv, os.getcwd()
    sys.argv = ["capsim", *args]
    os.chdir(cwd)
    try:
        with redirect_stderr(err), redirect_stdout(out), pytest.raises(SystemExit) as ex:
            cli.main()
    finally:
        sys.argv = argv
        os.chdir(here)
    return int(ex.value.code or 0), out.getvalue(), err.getvalue()


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "c.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_base_is_valid(tmp_path: Path) -> None:
    code, out, err = _cli(["validate", str(_write(tmp_path, BASE))], tmp_path)
    assert code == 0, err


@pytest.mark.parametrize("text,extra,where", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_config_exits_2_located(tmp_path: Path, text: str | bytes, extra: list[str], where: str) -> None:
    path = _write(tmp_path, text)
    code, out, err = _cli(["validate", str(path), *extra], tmp_path)
    assert code == 2, (out, err)
    assert "Traceback" not in err and "internal error" not in err
    lines = err.strip().splitlines()
    assert lines, "no message"
    for line in lines:
        if line.startswith("--set "):
            continue  # a command-line argument has no line in the file
        assert LOCATED.match(line), line
    assert any(line.startswith(where) or f"/{where}" in line for line in lines), err
    # and `run` refuses it before doing anything: no results folder
    out_dir = tmp_path / "results-here"
    code, _, err = _cli(["run", str(path), "--out", str(out_dir), "--quiet", *extra], tmp_path)
    assert code == 2, err
    assert not out_dir.exists()
    assert not Path("/tmp/capsim-pwned").exists()


def test_missing_and_directory_config(tmp_path: Path) -> None:
    code, _, err = _cli(["validate", str(tmp_path / "nope.yaml")], tmp_path)
    assert code == 2 and "no such file" in err
    code, _, err = _cli(["validate", str(tmp_path)], tmp_path)
    assert code == 2 and "is a directory" in err


def test_every_problem_at_once(tmp_path: Path) -> None:
    text = (
        edit("replications: 2", "replications: -1")
        .replace("servers: 2", "servers: x")
        .replace("mean_rps: 1.0", "mean_rps: .nan")
    )
    code, _, err = _cli(["validate", str(_write(tmp_path, text))], tmp_path)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    assert {line.split(" ")[0] for line in lines} == {
        "replications",
        "backends.gpu_pool.servers",
        "workload.arrivals.mean_rps",
    }


def test_limits_can_be_raised(tmp_path: Path) -> None:
    text = edit("mean_rps: 1.0", "mean_rps: 1000000").replace("horizon_h: 0.1", "horizon_h: 8000")
    path = _write(tmp_path, text)
    code, _, err = _cli(["validate", str(path)], tmp_path)
    assert code == 2 and "limits.max_events" in err and "workload.arrivals.mean_rps" in err
    code, _, err = _cli(
        ["validate", str(path), "--set", "limits.max_events=1e15", "--set", "limits.max_memory_gb=100"], tmp_path
    )
    assert code == 0, err


def test_stdin_binary_and_empty() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for data in (b"", b"\xff\xfe\x00\x01garbage", b"name: [unclosed\n"):
        proc = subprocess.run(
            [sys.executable, "-m", "sim", "validate", "-"], input=data, capture_output=True, env=env, timeout=60
        )
        assert proc.returncode == 2, proc.stderr
        assert b"Traceback" not in proc.stderr
        assert re.match(rb"^\S.* \(line \d+\): ", proc.stderr), proc.stderr
