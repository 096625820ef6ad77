"""Sessions: multi-turn conversations with think times and context that grows with each turn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim.config import Experiment
from workloads.generator import RequestGenerator
from workloads.sessions import FRESH_BASE, SESSION_SHIFT, SessionMaker
from workloads.synthetic import SyntheticSource

HOUR = 3600.0
CLASSES = [
    {
        "name": "chat",
        "share": 0.8,
        "input_tokens": {"dist": "lognormal", "median": 200, "sigma": 0.5},
        "output_tokens": {"dist": "geometric", "mean": 150},
    },
    {
        "name": "agent",
        "share": 0.2,
        "input_tokens": {"dist": "constant", "value": 1000},
        "output_tokens": {"dist": "constant", "value": 50},
    },
]
SESSIONS = {"turns": {"dist": "geometric", "mean": 4}, "think_time_s": {"dist": "exponential", "mean": 30}}


def _exp(
    arrivals: dict[str, Any], sessions: dict[str, Any] = SESSIONS, horizon_h: float = 6, seed: int = 2
) -> Experiment:
    return Experiment.model_validate(
        {
            "seed": seed,
            "horizon_h": horizon_h,
            "workload": {"arrivals": arrivals, "classes": CLASSES, "sessions": sessions},
        }
    )


def _sessions_table(exp: Experiment, rep: int = 0) -> dict[str, np.ndarray]:
    """Every turn with its session uid, straight from the source (blocks as the generator cuts them)."""
    src = SyntheticSource(exp, rep, exp.horizon_h * HOUR)
    assert src.sessions is not None
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("t", "cls", "in", "out", "uid")}
    hashes: list[list[int]] = []
    length = RequestGenerator(exp, rep).block_length_s()
    t0 = 0.0
    while t0 < exp.horizon_h * HOUR:
        t1 = min(t0 + length, exp.horizon_h * HOUR)
        starts = src._base(t0, t1)
        t, c, i, o, uid, (h, ho) = src.sessions.turns_between(starts, t1)
        for k, v in zip(cols, (t, c, i, o, uid), strict=True):
            cols[k].append(v)
        hashes.extend(h[ho[j] : ho[j + 1]].tolist() for j in range(t.size))
        t0 = t1
    out = {k: np.concatenate(v) for k, v in cols.items()}
    out["hashes"] = np.array(hashes, dtype=object)
    return out


def test_request_rate_turns_and_littles_law_for_concurrent_sessions() -> None:
    rate = 2.0
    exp = _exp({"kind": "constant", "mean_rps": rate})
    T = exp.horizon_h * HOUR
    counts, active_means, turns = [], [], []
    for rep in range(4):
        s = _sessions_table(exp, rep)
        counts.append(s["t"].size)
        first = np.full(s["uid"].max() + 1, np.inf)
        last = np.full(s["uid"].max() + 1, -np.inf)
        np.minimum.at(first, s["uid"], s["t"])
        np.maximum.at(last, s["uid"], s["t"])
        turns.append(np.bincount(s["uid"]).mean())
        # time-average number of sessions between their first and last turn, away from the edges
        grid = np.arange(HOUR, T - HOUR, 10.0)
        active = np.searchsorted(np.sort(first), grid, "right") - np.searchsorted(np.sort(last), grid, "right")
        active_means.append(active.mean())
    # mean_rps stays the request rate: sessions start at rate / E[turns]; turns cut by the horizon are few
    assert np.mean(counts) == pytest.approx(rate * T, rel=0.02)
    assert np.mean(turns) == pytest.approx(4.0, rel=0.03)
    # Little's law: sessions in progress = start rate x mean span = (rate / 4) x (4 - 1) x 30 s
    assert np.mean(active_means) == pytest.approx(rate / 4 * 3 * 30.0, rel=0.08)


def test_context_grows_turn_by_turn_and_hashes_share_the_prefix() -> None:
    exp = _exp({"kind": "constant", "mean_rps": 1.0}, horizon_h=2)
    s = _sessions_table(exp)
    order = np.lexsort((s["t"], s["uid"]))
    uid, t, inp, out, cls = s["uid"][order], s["t"][order], s["in"][order], s["out"][order], s["cls"][order]
    hashes = s["hashes"][order]
    same = uid[1:] == uid[:-1]
    assert same.sum() > 1000
    # next input = previous input + previous output + a new message of at least one token
    assert np.all(inp[1:][same] >= inp[:-1][same] + out[:-1][same] + 1)
    assert np.all(t[1:][same] >= t[:-1][same])
    assert np.all(cls[1:][same] == cls[:-1][same])  # one class per conversation
    # agent sessions: messages of exactly 1000 tokens, answers of 50: input_j = 1050 j - 50
    agent_turns = inp[cls == 1]
    assert np.all((agent_turns + 50) % 1050 == 0)
    for k in np.flatnonzero(same)[:500]:
        a, b = hashes[k], hashes[k + 1]
        full = inp[k] // 512
        assert a[:full] == b[:full]  # turn j's full blocks open turn j+1's prompt
        assert all(h == (uid[k] << SESSION_SHIFT) | i for i, h in enumerate(a[:full]))
        assert all(h >= FRESH_BASE for h in a[full:])
        assert len(a) == -(-inp[k] // 512)


def test_sessions_through_the_generator_are_deterministic_per_replication() -> None:
    arr = {"kind": "diurnal", "mean_rps": 0.5, "peak_hour": 10.5, "peak_to_mean": 3.0}
    exp = _exp(arr, horizon_h=24)

    def run(rep: int) -> tuple[np.ndarray, ...]:
        blocks = list(RequestGenerator(exp, rep).blocks())
        assert all(b.hash_ids is not None and b.hash_offsets is not None for b in blocks)
        return tuple(
            np.concatenate([getattr(b, k) for b in blocks]) for k in ("arrival_at", "class_idx", "input_tokens")
        )

    a, b, c = run(0), run(0), run(1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0][:100], c[0][:100])
    assert np.mean(a[1] == 1) == pytest.approx(0.2, abs=0.05)  # class shares hold per session
    # requests follow the day: the busiest hour is the peak hour (turns lag their session's start by ~1.5 min)
    counts = np.histogram(a[0], bins=np.arange(25) * HOUR)[0]
    assert int(np.argmax(counts)) == 10
    assert counts.sum() == pytest.approx(0.5 * 86400, rel=0.03)


def test_context_cap_and_no_hashes() -> None:
    sessions = {**SESSIONS, "max_context_tokens": 1500, "hash_block_tokens": 0}
    exp = _exp({"kind": "constant", "mean_rps": 1.0}, sessions=sessions, horizon_h=1)
    s = _sessions_table(exp)
    assert s["in"].max() == 1500
    assert all(len(h) == 0 for h in s["hashes"])
    maker = SessionMaker(exp, 0)
    assert maker.mean_turns == pytest.approx(4.0)
