"""Provider outages as an alternating renewal process (MTBF 10 h, MTTR 0.5 h), with and without fallback."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backends.api.provider import _outages
from sim.config.api import ApiSpec
from sim.engine.loading import load_config_text
from sim.engine.replication import simulate

OUTAGES = """
name: outages
seed: 21
horizon_h: 1000
workload:
  arrivals: {kind: constant, mean_rps: 0.04}
  classes: [{name: a, share: 1.0, input_tokens: {dist: constant, value: 100},
             output_tokens: {dist: constant, value: 20}}]
routing: {policy: api_only, fallback: none, fallback_target: "api:backup"}
backends:
  api: {outages: {mtbf_h: 10, mttr_h: 0.5}}
  apis:
    backup: {outages: {mtbf_h: 10, mttr_h: 0.5}}
"""
UP = 10 / 10.5
T_H = 1000.0
# asymptotic variance of the down fraction over T: (mu_u^2 var_d + mu_d^2 var_u) / (mu_c^3 T)
SD_UPTIME = math.sqrt((10**2 * 0.5**2 + 0.5**2 * 10**2) / (10.5**3 * T_H))


def test_no_fallback_availability_and_uptime_match_mtbf_over_mtbf_plus_mttr() -> None:
    exp = load_config_text(OUTAGES)
    reps = [simulate(exp, r).metrics for r in range(8)]
    uptime = np.array([m["uptime"] for m in reps])
    avail = np.array([m["availability"] for m in reps])
    assert abs(uptime.mean() - UP) < 4 * SD_UPTIME / math.sqrt(len(reps))
    assert abs(avail.mean() - UP) < 4 * SD_UPTIME / math.sqrt(len(reps))
    for m in reps:
        # Poisson arrivals see time averages: per replication, availability = uptime up to binomial noise
        assert abs(m["availability"] - m["uptime"]) < 5 * math.sqrt(UP * (1 - UP) / m["requests"])
        assert m["failed"] == m["api_outage_failures"] == m["requests"] - m["served"] - m["in_flight"]


def test_fallback_to_a_second_provider_raises_availability() -> None:
    none = load_config_text(OUTAGES)
    api = load_config_text(OUTAGES, ["routing.fallback=api"])
    both_up = 1 - (1 - UP) ** 2  # independent providers: fails only while both are down
    avails = []
    for r in range(3):
        a, b = simulate(none, r).metrics, simulate(api, r).metrics
        assert b["availability"] > a["availability"] + 0.03  # common random numbers: same arrivals, same outages
        assert b["fallbacks"] == a["failed"]  # every outage failure of the primary went to the backup
        assert b["failed"] == b["requests"] - b["served"] - b["in_flight"]
        assert b["uptime"] > a["uptime"]
        avails.append(b["availability"])
    assert np.mean(avails) == pytest.approx(both_up, abs=0.002)


def test_outage_process_is_stationary() -> None:
    spec = ApiSpec.model_validate({"outages": {"mtbf_h": 10, "mttr_h": 0.5}})
    rng = np.random.default_rng(4)
    down_at_zero = [len(s) > 0 and s[0] == 0.0 for s, _ in (_outages(spec, rng, 3600.0) for _ in range(4000))]
    p = 0.5 / 10.5
    assert np.mean(down_at_zero) == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / 4000))
