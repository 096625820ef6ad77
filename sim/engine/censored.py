"""Latency percentiles that count requests which got no answer (right-censored at the horizon).

A request still waiting at the horizon, or dropped at its timeout, has no TTFT or end-to-end latency; all
that is known is that it waited `horizon - arrival` (or `drop - arrival`) without one. Leaving it out of the
percentiles censors the tail away: at 100x overload only the cache hits are served and the p95 TTFT reads
20 ms. The convention (docs/metrics.md, "Unserved requests in latency percentiles"):

* an unserved request ranks above every served one (it is slower than any answer that came);
* a percentile whose rank falls among the served requests is their value at that rank of all requests;
* a percentile whose rank falls among the unserved is *censored*: it is reported as a floor, the larger of
  the slowest served latency and the longest wait of an unserved request, and a `<=` target on it fails
  (sim.targets), whatever the floor reads.

Adding unserved requests therefore never lowers a percentile, and a p95 is censored exactly when more than
5% of the requests it describes are unserved. Unserved requests are held as a count and the longest wait,
so they cost no memory per request.
"""

from __future__ import annotations

import math

import numpy as np

from sim.core.histogram import LogHistogram


class Unserved:
    """Requests without an answer for one percentile: how many, and the longest one waited."""

    __slots__ = ("count", "max_wait_s")

    def __init__(self) -> None:
        self.count = 0
        self.max_wait_s = 0.0

    def add(self, waits_s: np.ndarray) -> None:
        if len(waits_s):
            self.count += len(waits_s)
            self.max_wait_s = max(self.max_wait_s, float(np.max(waits_s)))


def censored_quantile(served: LogHistogram, unserved: Unserved, q: float) -> tuple[float | None, bool]:
    """(value, censored) of the q-quantile of served and unserved requests together (module docstring).

    None when there is no request at all; `censored` is True when the rank falls among the unserved."""
    n_served = served.count
    n = n_served + unserved.count
    if n == 0:
        return None, False
    if unserved.count == 0:
        return served.quantile(q), False
    rank = max(1, math.ceil(q * n))  # the histogram's own rank rule (numpy's inverted_cdf)
    if rank <= n_served:
        return served.value_at_rank(rank), False
    slowest = served.max if n_served else None
    return max(unserved.max_wait_s, slowest or 0.0), True
