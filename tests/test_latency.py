"""The one definition of a request's latencies (sim/core/latency.py) and the one stamp for whole answers
(RequestBlock.answered), on hand-made blocks whose answers are known."""

from __future__ import annotations

import math

import numpy as np
from gpu_support import make_block

from sim.core.latency import latencies
from sim.core.request_block import PATH_API, PATH_API_BATCH, PATH_CACHE, PATH_GPU, PENDING, SERVED


def test_ttft_e2e_tpot_from_the_timestamps() -> None:
    # arrivals 0, 3600, 7200, 7300 s; outputs 11, 11, 11, 1 tokens
    b = make_block(np.array([0.0, 3600.0, 7200.0, 7300.0]), np.array([5, 5, 5, 5]), np.array([11, 11, 11, 1]))
    b.answered(np.array([0]), PATH_API, np.array([0.5]), np.array([1.0]), np.array([3.0]))  # streamed
    b.answered(1, PATH_API_BATCH, 3600.0, 3700.0, 3700.0)  # a batch answer comes whole: no TPOT
    b.answered(np.array([2, 3]), PATH_CACHE, np.array([7200.0, 7300.0]), np.array([7200.25, 7300.25]), 7300.5)
    assert b.pending == 0 and (b.status == SERVED).all()
    lat = latencies(b, b.status == SERVED)
    np.testing.assert_array_equal(lat.ttft_s, [1.0, 100.0, 0.25, 0.25])
    np.testing.assert_array_equal(lat.e2e_s, [3.0, 100.0, 100.5, 0.5])
    np.testing.assert_array_equal(lat.tpot_s, [(3.0 - 1.0) / 10])  # only the streamed answer with >= 2 tokens
    np.testing.assert_array_equal(lat.hour, [0, 1, 2, 2])


def test_gpu_answers_count_as_streams_and_only_served_requests_are_measured() -> None:
    b = make_block(np.array([0.0, 1.0]), np.array([5, 5]), np.array([3, 3]))
    b.path[:] = PATH_GPU
    b.first_token_at[:] = [0.5, math.nan]
    b.done_at[:] = [1.5, 2.0]
    b.status[:] = [SERVED, PENDING]
    lat = latencies(b, b.status == SERVED)
    np.testing.assert_array_equal(lat.ttft_s, [0.5])
    np.testing.assert_array_equal(lat.tpot_s, [0.5])
