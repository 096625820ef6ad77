"""Hostile configs: every one is refused at `capsim validate` with exit 2, the dotted path, the line and why.

Covers what validates must run (data files in any section, non-finite targets, degenerate looped traces,
64-bit hash ids), bounded work and memory (one estimate of the whole run: huge bursts, grids, tiny
mtbf/mttr/evaluate_every_s, fast looped traces, `mean_rps` through `--sweep`) and values that YAML 1.1
or lax types would silently accept (yes, 1:30, !!binary, 1e308 multipliers, 0.5 tokens, a KV cache too
small for one request), plus the line numbers of keys like `~:` and of files holding U+2028.
"""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.app import cli
from sim.config.errors import ConfigError
from sim.engine.limits import estimate_run
from sim.engine.loading import load_config_text
from sim.engine.yaml12 import Yaml12Loader, dump

BASE = """\
name: hostile
seed: 1
replications: 2
horizon_h: 1.0
workload:
  arrivals: {kind: constant, mean_rps: 1.0}
  classes:
    - name: chat
      input_tokens: {dist: lognormal, median: 600, sigma: 0.9}
      output_tokens: {dist: geometric, mean: 200}
backends:
  gpu_pool: {servers: 2}
output: {report: false}
"""


def _cli(args: list[str]) -> tuple[int, str, str]:
    err, out = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["capsim", *args]
    try:
        with redirect_stderr(err), redirect_stdout(out), pytest.raises(SystemExit) as ex:
            cli.main()
    finally:
        sys.argv = argv
    return int(ex.value.code or 0), out.getvalue(), err.getvalue()


def _validate(tmp_path: Path, text: str, *sets: str) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    args = ["validate", str(path)]
    for s in sets:
        args += ["--set", s]
    code, _, err = _cli(args)
    return code, err


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "neg.csv").write_text("x\n-1\n2\n", encoding="utf-8")
    (tmp_path / "half.csv").write_text("x\n2.5\n3\n", encoding="utf-8")
    (tmp_path / "ok.csv").write_text("x\n1\n2\n", encoding="utf-8")
    (tmp_path / "equal.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n5,10,10\n5,10,10\n", encoding="utf-8")
    (tmp_path / "tiny.csv").write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,10\n0.000001,10,10\n", encoding="utf-8"
    )
    (tmp_path / "big.jsonl").write_text(
        '{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [' + str(2**63) + "]}\n",
        encoding="utf-8",
    )
    (tmp_path / "short.csv").write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,10\n1,10,10\n2,10,10\n", encoding="utf-8"
    )
    return tmp_path


def _emp(d: Path, name: str, column: str = "x") -> str:
    return f"{{dist: empirical, file: {d / name}, column: {column}}}"


# (case, extra --set values or a text edit, dotted path with its line, words of the reason)
CASES = [
    ("api ttft negative", ["backends.api.ttft_s=" + "{neg}"], "backends.api.ttft_s.column (line 11)", "negative"),
    (
        "api ttft missing file",
        ["backends.api.ttft_s=" + "{missing}"],
        "backends.api.ttft_s.file (line 11)",
        "not found",
    ),
    (
        "api ttft wrong column",
        ["backends.api.ttft_s=" + "{wrongcol}"],
        "backends.api.ttft_s.column (line 11)",
        "no column",
    ),
    (
        "think time negative",
        ["workload.sessions={{think_time_s: {neg}}}"],
        "workload.sessions.think_time_s.column (line 5)",
        "negative",
    ),
    (
        "cold start negative",
        ["backends.gpu_pool.cold_start_s={neg}"],
        "backends.gpu_pool.cold_start_s.column (line 12)",
        "negative",
    ),
    (
        "input tokens negative",
        ["workload.classes.0.input_tokens={neg}"],
        "workload.classes.0.input_tokens.column (line 9)",
        "whole numbers >= 1",
    ),
    (
        "output tokens fractional",
        ["workload.classes.0.output_tokens={half}"],
        "workload.classes.0.output_tokens.column (line 10)",
        "not a whole number",
    ),
    (
        "constant half token",
        ["workload.classes.0.input_tokens={{dist: constant, value: 0.5}}"],
        "workload.classes.0.input_tokens.value (line 9)",
        "refuses to round",
    ),
    ("infinite target", ['plan.targets=["availability>=1e999"]'], "plan.targets", "not a finite number"),
    (
        "loop of equal times",
        ["workload.arrivals={{kind: trace, file: {equal_path}, loop: true}}"],
        "workload.arrivals.loop (line 6)",
        "two distinct times",
    ),
    (
        "loop period tiny",
        ["workload.arrivals={{kind: trace, file: {tiny_path}, loop: true}}"],
        "workload.arrivals.speed (line 6)",
        "under 1 ms",
    ),
    (
        "hash ids beyond int64",
        ["workload.arrivals={{kind: trace, file: {big_path}}}"],
        "workload.arrivals.file (line 6)",
        "64-bit",
    ),
    (
        "burst of 1e8",
        ["workload.arrivals.bursts=[{{count: 100000000, days: all}}]"],
        "workload.arrivals.bursts.0.count (line 6)",
        "limits.max_memory_gb",
    ),
    (
        "mtbf and mttr 1e-300",
        ["backends.gpu_pool.failures={{mtbf_h: 1.0e-300, mttr_h: 1.0e-300}}"],
        "backends.gpu_pool.failures.mtbf_h (line 12)",
        "failure/repair cycles",
    ),
    (
        "api outages 1e-300",
        ["backends.api.outages={{mtbf_h: 1.0e-300, mttr_h: 1.0e-300}}"],
        "backends.api.outages.mtbf_h (line 11)",
        "API outages",
    ),
    (
        "evaluate_every_s 1e-300",
        [
            "backends.gpu_pool.autoscaler={{enabled: true, target_queue_wait_s: 1, evaluate_every_s: 1.0e-300}}",
        ],
        "backends.gpu_pool.autoscaler.evaluate_every_s (line 12)",
        "autoscaler evaluations",
    ),
    (
        "fast looped trace",
        ["workload.arrivals={{kind: trace, file: {short_path}, loop: true, speed: 1000}}", "horizon_h=8000"],
        "workload.arrivals.loop (line 6)",
        "limits.max_events",
    ),
    ("servers yes", ["backends.gpu_pool.servers=yes"], "backends.gpu_pool.servers (line 12)", "YAML 1.2"),
    (
        "servers true",
        ["backends.gpu_pool.servers=true"],
        "backends.gpu_pool.servers (line 12)",
        "boolean is not a number",
    ),
    ("horizon 1:30", ["horizon_h=1:30"], "horizon_h (line 4)", "sexagesimal"),
    (
        "multipliers 1e308",
        ["workload.arrivals={{kind: hourly, multipliers: [" + ",".join(["1.0e+308"] * 24) + "]}}"],
        "workload.arrivals.multipliers (line 6)",
        "overflow",
    ),
]


@pytest.mark.parametrize(("case", "sets", "where", "why"), CASES, ids=[c[0] for c in CASES])
def test_hostile_value_refused_at_validate(data: Path, case: str, sets: list[str], where: str, why: str) -> None:
    subs = {
        "neg": _emp(data, "neg.csv"),
        "half": _emp(data, "half.csv"),
        "missing": _emp(data, "missing.csv"),
        "wrongcol": _emp(data, "ok.csv", "y"),
        "equal_path": data / "equal.csv",
        "tiny_path": data / "tiny.csv",
        "big_path": data / "big.jsonl",
        "short_path": data / "short.csv",
    }
    code, err = _validate(data, BASE, *[s.format(**subs) for s in sets])
    assert code == 2, err
    assert "Traceback" not in err
    assert where in err, err
    assert why in err, err


YAML_CASES = [
    (
        "servers: yes",
        BASE.replace("gpu_pool: {servers: 2}", "gpu_pool: {servers: yes}"),
        "backends.gpu_pool.servers (line 12)",
        "yes/no/on/off are text",
    ),
    ("horizon 1:30", BASE.replace("horizon_h: 1.0", "horizon_h: 1:30"), "horizon_h (line 4)", "no sexagesimal"),
    (
        "name !!binary",
        BASE.replace("name: hostile", "name: !!binary aGVsbG8="),
        "name (line 1)",
        "YAML tag not allowed",
    ),
    (
        "octal-looking 012 is 12",
        BASE.replace("replications: 2", "replications: 012\nwarmup_h: x"),
        "warmup_h (line 4)",
        "number",
    ),
    ("~ key", BASE.replace("seed: 1", "seed: 1\n~: 3"), "None (line 3)", "keys must be strings"),
    (
        "servers 4.0",
        BASE.replace("gpu_pool: {servers: 2}", "gpu_pool: {servers: 4.0}"),
        "backends.gpu_pool.servers (line 12)",
        "whole number",
    ),
    ("quoted number", BASE.replace("horizon_h: 1.0", 'horizon_h: "24"'), "horizon_h (line 4)", "text is not converted"),
]


@pytest.mark.parametrize(("case", "text", "where", "why"), YAML_CASES, ids=[c[0] for c in YAML_CASES])
def test_yaml11_surprises_refused(tmp_path: Path, case: str, text: str, where: str, why: str) -> None:
    code, err = _validate(tmp_path, text)
    assert code == 2, err
    assert where in err and why in err, err


def test_yaml12_reads_1e3_as_a_float_and_012_as_twelve() -> None:
    exp = load_config_text(
        BASE.replace("replications: 2", "replications: 012").replace("mean_rps: 1.0", "mean_rps: 1e-1")
    )
    assert exp.replications == 12 and exp.workload.arrivals.mean_rps == pytest.approx(0.1)


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85"])
def test_line_numbers_count_newlines_only(tmp_path: Path, sep: str) -> None:
    # a separator PyYAML takes for a line break (inside a quoted string) must not shift the lines after it
    text = BASE.replace("name: hostile", f'name: "host{sep}ile"').replace("horizon_h: 1.0", "horizon_h: -1")
    code, err = _validate(tmp_path, text)
    assert code == 2 and "name (line 1)" in err and "horizon_h (line 4)" in err, err


def test_sweep_of_mean_rps_checked_like_set(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(BASE.replace("horizon_h: 1.0", "horizon_h: 8000"), encoding="utf-8")
    code, _, err = _cli(
        ["run", str(path), "--sweep", "workload.arrivals.mean_rps=1,1000000", "--out", str(tmp_path / "o")]
    )
    assert code == 2 and "workload.arrivals.mean_rps=1000000" in err and "limits.max_events" in err, err
    assert not (tmp_path / "o").exists()
    # the same grid in the file's own `sweep:` is refused by validate
    path.write_text(
        BASE.replace("horizon_h: 1.0", "horizon_h: 8000") + "sweep: {workload.arrivals.mean_rps: [1, 1000000]}\n",
        encoding="utf-8",
    )
    code, _, err = _cli(["validate", str(path)])
    assert code == 2 and "sweep.workload.arrivals.mean_rps" in err and "limits.max_events" in err, err


def test_huge_grid_refused_before_it_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.engine.variants

    calls = []
    real = sim.engine.variants.derive
    monkeypatch.setattr(sim.engine.variants, "derive", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = tmp_path / "c.yaml"
    path.write_text(BASE, encoding="utf-8")
    big = ",".join(str(i) for i in range(1, 1001))
    code, _, err = _cli(
        [
            "run",
            str(path),
            "--sweep",
            f"backends.gpu_pool.servers={big}",
            "--sweep",
            f"seed={big}",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "1e+06 sweep points" in err and "limits.max_" in err, err
    assert calls == []  # no point was derived, let alone the 1e6 of the grid
    assert not (tmp_path / "o").exists()


def test_huge_burst_refused_before_generation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import workloads.bursts

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("requests were generated for a refused config")

    monkeypatch.setattr(workloads.bursts.BurstSchedule, "__init__", boom)
    code, err = _validate(tmp_path, BASE, "workload.arrivals.bursts=[{count: 100000000, days: all}]")
    assert code == 2 and "limits.max_memory_gb" in err
    code, _, err = _cli(
        [
            "run",
            str(tmp_path / "c.yaml"),
            "--set",
            "workload.arrivals.bursts=[{count: 100000000}]",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and not (tmp_path / "o").exists()


def test_raising_the_cap_lets_it_validate(tmp_path: Path) -> None:
    code, err = _validate(tmp_path, BASE, "workload.arrivals.bursts=[{count: 100000000}]", "limits.max_memory_gb=20")
    assert code == 0, err


@settings(max_examples=40, deadline=None)
@given(
    key=st.sampled_from(
        ["backends.gpu_pool.failures.mtbf_h", "backends.gpu_pool.failures.mttr_h", "backends.api.outages.mtbf_h"]
    ),
    tiny=st.floats(1e-300, 1e-9),
)
def test_tiny_periods_are_refused_or_bounded(key: str, tiny: float) -> None:
    """Whatever the period, the estimate is finite-or-refused: validate never accepts > max_events of work."""
    both = key.rsplit(".", 1)[0]
    text = BASE + f"# {key}\n"
    sets = [f"{both}.mtbf_h={tiny!r}", f"{both}.mttr_h={tiny!r}"]
    try:
        exp = load_config_text(text, sets)
    except ConfigError as exc:
        assert any("limits.max_events" in p.message for p in exc.problems)
        return
    assert estimate_run(exp).total_events <= exp.limits.max_events


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.text(max_size=12), st.integers(-(10**20), 10**20), st.floats(allow_nan=False), st.booleans(), st.none()
    )
)
def test_what_is_written_reads_back_the_same(value: object) -> None:
    """The resolved config.yaml is written so that YAML 1.2 (capsim) and 1.1 (yaml.safe_load) agree."""
    text = dump({"v": value})
    ours = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader
    assert ours == {"v": value} or (isinstance(value, float) and ours["v"] == value)
    assert yaml.safe_load(text) == ours


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["yes", "no", "on", "off", "Yes", "ON", "1:30", "1:30:00", "y", "n"]))
def test_yaml11_words_never_become_numbers(word: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config_text(BASE, [f"backends.gpu_pool.servers={word}"])
    (p,) = exc.value.problems
    assert p.path == "backends.gpu_pool.servers" and p.line == 12 and "YAML 1.2" in p.message


KV_CASE = """\
name: kv
seed: 1
replications: 1
horizon_h: 0.05
workload:
  arrivals: {kind: constant, mean_rps: 2.0}
  classes:
    - name: chat
      input_tokens: {dist: constant, value: 100}
      output_tokens: {dist: constant, value: 10}
backends:
  gpu_pool: {servers: 1, kv_policy: KV_POLICY, kv_cache_tokens: KV}
output: {report: false, timeseries: false}
"""


@pytest.mark.parametrize(
    "policy,kv,refused",
    [
        ("paged", 1, True),  # the case: ran with availability 0
        ("paged", 110, True),  # 6 blocks of 16 = 96 (+1 in a new block) < 100 + 10
        ("paged", 112, False),  # 7 blocks: 113 >= 110
        ("reserve", 109, True),
        ("reserve", 110, False),  # exactly one request's prompt + output
    ],
)
def test_kv_cache_too_small_for_any_request_is_refused(tmp_path: Path, policy: str, kv: int, refused: bool) -> None:
    text = KV_CASE.replace("KV_POLICY", policy).replace("KV", str(kv))
    code, err = _validate(tmp_path, text)
    if refused:
        assert code == 2 and "backends.gpu_pool.kv_cache_tokens (line 12)" in err and "'chat'" in err, err
        return
    assert code == 0, err
    # at the boundary the pool really serves them (the refusal is exact, not a guess): nothing fails
    import sim

    summary = sim.simulate(tmp_path / "c.yaml", workers=1).summary["metrics"]
    assert summary["failed"]["mean"] == 0 and summary["served"]["mean"] > 0
