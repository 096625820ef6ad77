"""A request's latencies from the timestamps its backend wrote into the RequestBlock: the one definition.

* TTFT = first_token_at - arrival_at (queueing, prefill and the first iteration);
* e2e = done_at - arrival_at (to the last token);
* TPOT = (e2e - TTFT) / (output tokens - 1), over answers streamed token by token (by the GPU pool or a
  streaming API call) with at least two output tokens: a cache, degraded or batch-API answer comes whole.

sim.engine.recorder folds them into the metrics (and hands them to its hybrid tally); backends.gpu.engine_bench
reports them as vLLM's serving benchmark does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.core.calendar import HOUR_S
from sim.core.request_block import PATH_API, PATH_GPU, RequestBlock


@dataclass(frozen=True)
class Latencies:
    """Of the requests selected by a mask (the served ones), in block order."""

    arrival_at: np.ndarray
    class_idx: np.ndarray
    hour: np.ndarray  # hour of the day of the arrival (0-23)
    ttft_s: np.ndarray
    e2e_s: np.ndarray
    tpot_s: np.ndarray  # of the streamed answers among them with at least two output tokens


def latencies(b: RequestBlock, served: np.ndarray) -> Latencies:
    arrival_at = b.arrival_at[served]
    ttft = b.first_token_at[served] - arrival_at
    e2e = b.done_at[served] - arrival_at
    out = b.output_tokens[served]
    path = b.path[served]
    streamed = (out >= 2) & ((path == PATH_GPU) | (path == PATH_API))
    tpot = (e2e[streamed] - ttft[streamed]) / (out[streamed] - 1)
    hour = np.floor(arrival_at / HOUR_S).astype(np.int64) % 24
    return Latencies(arrival_at, b.class_idx[served], hour, ttft, e2e, tpot)
