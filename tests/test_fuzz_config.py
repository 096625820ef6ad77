"""Fuzzing `capsim validate`: randomly broken configs get exit 0 or 2 with located one-line messages,
never an internal error or a traceback. In-process for speed; a few through a real subprocess."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.config.errors import ConfigError
from sim.engine import yaml12
from sim.engine.loading import load_config_text
from tests.strategies import mutated_config_texts, mutated_configs, valid_configs

ROOT = Path(__file__).resolve().parents[1]
LINE_RE = re.compile(r"^\S.* \(line \d+\): \S.*$")
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_text(text: str) -> int:
    """0 if the config loads, 2 if it is refused with located one-line problems; anything else fails."""
    try:
        load_config_text(text)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError must carry at least one problem"
        for p in exc.problems:
            line = str(p)
            assert "\n" not in line
            assert p.line is not None, f"problem without a line: {line}"
            assert LINE_RE.match(line), line
        return 2
    return 0


def run_cli_in_process(text: str) -> tuple[int, str]:
    from sim.app import cli

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.yaml"
        path.write_text(text, encoding="utf-8")
        err, out = io.StringIO(), io.StringIO()
        argv = sys.argv
        sys.argv = ["capsim", "validate", str(path)]
        try:
            with redirect_stderr(err), redirect_stdout(out), pytest.raises(SystemExit) as ex:
                cli.main()
        finally:
            sys.argv = argv
        return int(ex.value.code or 0), err.getvalue()


@given(valid_configs())
@settings(max_examples=60, deadline=None)
def test_valid_configs_load(data: dict) -> None:
    assert check_text(yaml12.dump(data)) == 0


@given(mutated_configs())
@FUZZ
def test_mutated_configs_never_crash(case: tuple[dict, list[str]]) -> None:
    data, _what = case
    assert check_text(yaml12.dump(data, allow_unicode=True)) in (0, 2)


@given(mutated_config_texts())
@FUZZ
def test_damaged_yaml_never_crashes(text: str) -> None:
    assert check_text(text) in (0, 2)


@given(mutated_configs(max_mutations=2))
@settings(max_examples=40, deadline=None)
def test_cli_in_process_exit_codes(case: tuple[dict, list[str]]) -> None:
    code, err = run_cli_in_process(yaml12.dump(case[0], allow_unicode=True))
    assert code in (0, 2), err
    assert "Traceback" not in err and "internal error" not in err
    if code == 2:
        assert err.strip() and all(LINE_RE.match(line) for line in err.strip().splitlines()), err


@given(st.one_of(mutated_configs().map(lambda c: yaml12.dump(c[0])), mutated_config_texts()))
@settings(max_examples=4, deadline=None)
def test_cli_subprocess_exit_codes(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.yaml"
        path.write_text(text, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-m", "sim", "validate", str(path)],
            capture_output=True,
            text=True,
            env=env,
            cwd=d,
            timeout=60,
        )
    assert proc.returncode in (0, 2), proc.stderr
    assert "Traceback" not in proc.stderr
