"""Trace replay (kind: trace): Azure CSV and Mooncake JSONL, time origin, speed, loop, exact sums.

Reference numbers are computed from the files here with the csv/json modules, independently of the
pandas-based reader under test.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.config import Experiment
from sim.config.errors import ConfigError
from sim.engine.loading import load_config_text
from workloads.files import PROFILES_DIR
from workloads.generator import RequestGenerator

CONV = PROFILES_DIR / "azure_llm_2023_conv.csv"
CODE = PROFILES_DIR / "azure_llm_2023_code.csv"
MOONCAKE = PROFILES_DIR / "mooncake_fast25_conversation_trace.jsonl"


def _azure_reference(path: Path) -> tuple[int, int, int, np.ndarray]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    stamps = [datetime.fromisoformat(r["TIMESTAMP"][:26]) for r in rows]  # microseconds are enough here
    t = np.array([(s - stamps[0]).total_seconds() for s in stamps])
    return len(rows), sum(int(r["ContextTokens"]) for r in rows), sum(int(r["GeneratedTokens"]) for r in rows), t


def _exp(arrivals: dict[str, Any], horizon_h: float = 1.0, classes: list[dict[str, Any]] | None = None) -> Experiment:
    wl: dict[str, Any] = {"arrivals": arrivals}
    if classes:
        wl["classes"] = classes
    return Experiment.model_validate({"seed": 3, "horizon_h": horizon_h, "workload": wl})


def _replay(exp: Experiment, rep: int = 0) -> dict[str, np.ndarray]:
    blocks = list(RequestGenerator(exp, rep).blocks())
    out = {
        "t": np.concatenate([b.arrival_at for b in blocks]),
        "in": np.concatenate([b.input_tokens for b in blocks]),
        "out": np.concatenate([b.output_tokens for b in blocks]),
        "cls": np.concatenate([b.class_idx for b in blocks]),
    }
    if blocks[0].hash_ids is not None:
        ids, lens = [], []
        for b in blocks:
            ids.append(b.hash_ids)
            lens.append(np.diff(b.hash_offsets))
        out["hash_ids"] = np.concatenate(ids)
        out["hash_len"] = np.concatenate(lens)
    return out


def test_azure_conversation_trace_replays_every_request_with_exact_token_sums() -> None:
    n, sum_in, sum_out, t_ref = _azure_reference(CONV)
    assert n == 19_366  # (the issue and the shared README say 19,365: see workloads/profiles/README.md)
    exp = _exp({"kind": "trace", "file": "azure_llm_2023_conv.csv"})
    r = _replay(exp)
    assert r["t"].size == n
    assert int(r["in"].sum()) == sum_in == 22_361_870
    assert int(r["out"].sum()) == sum_out == 4_088_665
    assert r["t"][0] == 0.0 and np.all(np.diff(r["t"]) >= 0)
    np.testing.assert_allclose(r["t"], t_ref, atol=2e-6)
    # the same on every replication (only classes are drawn)
    r2 = _replay(exp, rep=1)
    assert np.array_equal(r2["t"], r["t"]) and np.array_equal(r2["in"], r["in"])


def test_azure_code_trace_and_classes_by_share() -> None:
    n, sum_in, sum_out, _ = _azure_reference(CODE)
    classes = [{"name": "a", "share": 0.7}, {"name": "b", "share": 0.3}]
    r = _replay(_exp({"kind": "trace", "file": str(CODE)}, classes=classes))
    assert r["t"].size == n == 8_819
    assert int(r["in"].sum()) == sum_in and int(r["out"].sum()) == sum_out
    share_b = float(np.mean(r["cls"] == 1))
    assert abs(share_b - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)


def test_mooncake_trace_time_units_tokens_and_prefix_hashes() -> None:
    rows = [json.loads(line) for line in MOONCAKE.read_text().splitlines() if line.strip()]
    exp = _exp({"kind": "trace", "file": "mooncake_fast25_conversation_trace.jsonl"})
    r = _replay(exp)
    assert r["t"].size == len(rows) == 12_031
    t_ref = np.array([row["timestamp"] for row in rows], dtype=float) / 1000.0
    np.testing.assert_allclose(r["t"], t_ref - t_ref[0], atol=1e-9)
    assert int(r["in"].sum()) == sum(row["input_length"] for row in rows)
    assert int(r["out"].sum()) == sum(max(row["output_length"], 1) for row in rows)
    assert np.array_equal(r["hash_len"], [len(row["hash_ids"]) for row in rows])
    assert np.array_equal(r["hash_ids"], [h for row in rows for h in row["hash_ids"]])


def test_speed_compresses_time_and_the_horizon_cuts() -> None:
    _, _, _, t_ref = _azure_reference(CONV)
    fast = _replay(_exp({"kind": "trace", "file": "azure_llm_2023_conv.csv", "speed": 4.0}, horizon_h=0.25))
    assert fast["t"].size == int(np.sum(t_ref / 4.0 < 900.0)) == 19_366  # 58 min at 4x fits in 15 min
    np.testing.assert_allclose(fast["t"], t_ref / 4.0, atol=1e-6)
    slow = _replay(_exp({"kind": "trace", "file": "azure_llm_2023_conv.csv", "speed": 0.5}, horizon_h=1.0))
    assert slow["t"].size == int(np.sum(t_ref * 2.0 < 3600.0))
    assert slow["t"].size < 19_366


def test_loop_repeats_with_one_mean_gap() -> None:
    n, sum_in, _, t_ref = _azure_reference(CONV)
    period = t_ref[-1] * n / (n - 1)
    r = _replay(_exp({"kind": "trace", "file": "azure_llm_2023_conv.csv", "loop": True}, horizon_h=3.0))
    expected = np.concatenate([t_ref + k * period for k in range(4)])
    expected = expected[expected < 3 * 3600.0]
    assert r["t"].size == expected.size
    np.testing.assert_allclose(r["t"], expected, atol=1e-5)
    assert np.all(np.diff(r["t"]) >= 0)
    assert int(r["in"][: 3 * n].sum()) == 3 * sum_in


def test_bad_traces_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("TIMESTAMP,Tokens\n1.0,3\n")
    with pytest.raises(ConfigError, match=r"workload\.arrivals\.file.*no column 'ContextTokens'"):
        load_config_text("workload:\n  arrivals: {kind: trace, file: bad.csv}\n", base_dir=tmp_path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config_text("workload:\n  arrivals: {kind: trace, file: nowhere.csv}\n", base_dir=tmp_path)
    with pytest.raises(ConfigError, match="not to kind 'trace'"):
        load_config_text("workload:\n  arrivals: {kind: trace, file: azure_llm_2023_conv.csv, bursts: [{count: 3}]}\n")


def test_numeric_time_column_and_file_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "mine.csv").write_text("t,i,o\n10.0,5,7\n12.5,6,8\n11.0,1,0\n")
    text = (
        "horizon_h: 1\nworkload:\n"
        "  arrivals: {kind: trace, file: mine.csv, time_column: t, input_column: i, output_column: o}\n"
    )
    exp = load_config_text(text, base_dir=tmp_path)
    assert Path(exp.workload.arrivals.file or "").is_absolute()  # found beside the config: stored absolute
    r = _replay(exp)
    np.testing.assert_allclose(r["t"], [0.0, 1.0, 2.5])  # sorted, origin at the first request
    assert r["in"].tolist() == [5, 1, 6] and r["out"].tolist() == [7, 1, 8]  # 0 output tokens count as 1
