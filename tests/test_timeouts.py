"""Class timeouts: a waiting request whose client gave up is dropped, also when the horizon ends first."""

from __future__ import annotations

import numpy as np

from sim.core.request_block import DROPPED, PENDING
from sim.engine.loading import load_config_text
from sim.engine.replication import simulate

# one server, service 20 s (400 iterations of 50 ms), timeout 2 s, 2 arrivals/s: the queue head is only
# examined every 20 s, so at the horizon dozens of waiting requests have outwaited their timeout
CONFIG = """
name: timeouts
horizon_h: 0.1
workload:
  arrivals: {kind: constant, mean_rps: 2.0}
  classes:
    - name: a
      input_tokens: {dist: constant, value: 10}
      output_tokens: {dist: constant, value: 400}
      timeout_s: 2.0
backends:
  gpu_pool: {servers: 1, max_batch: 1, iteration_s: {base: 0.05}}
output: {requests: true}
"""


def test_requests_that_outwaited_their_timeout_are_dropped_not_in_flight() -> None:
    exp = load_config_text(CONFIG)
    res = simulate(exp, 0)
    req = res.requests
    assert req is not None
    horizon = exp.horizon_h * 3600.0
    waiting = (req["status"] == PENDING) & np.isnan(req["start_at"])
    assert (req["arrival_at"][waiting] + 2.0 >= horizon).all()
    dropped = req["status"] == DROPPED
    np.testing.assert_allclose(req["done_at"][dropped], req["arrival_at"][dropped] + 2.0)
    m = res.metrics
    assert m["dropped"] == int(dropped.sum()) > 0
    assert m["requests"] == m["served"] + m["dropped"] + m["failed"] + m["in_flight"]
