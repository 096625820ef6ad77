"""`limits:` one estimate of the work (events) and memory of a whole run, checked once before anything runs.

Every field of every model is bounded, but bounded fields still multiply into runs that would not finish
or would exhaust memory (`mean_rps: 1.0e6` for a year, a burst of 1e8 requests, `mtbf_h: 1e-300`, a sweep
of 1000 x 1000 points). `estimate_run` adds up, from the config alone, every quantity that multiplies work
(requests x events per request, failure/repair cycles, API outages, autoscaler evaluations, timeseries
minutes, replications, sweep points) and the largest things held in memory at once (a generation block, a
burst occurrence, the response cache, the sweep grid). `limit_problems` compares the totals with
`limits.max_events` and `limits.max_memory_gb` and names the key of the largest term. A new key that
multiplies work adds a term here, and only here. A user who means it raises the cap
(`--set limits.max_events=1e11`). The figures are estimates (see docs/config.md, "Limits").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from sim.config.base import Frozen

if TYPE_CHECKING:
    pass


class LimitsSpec(Frozen):
    # events of the whole run (all replications, all sweep points): ~2e5-4e5 events/s per core, so 2e10
    # is about a CPU-day
    max_events: Annotated[float, Field(gt=0, le=1.0e18)] = 2.0e10
    # memory one run holds at once (a generation block, the largest burst, caches, the sweep grid)
    max_memory_gb: Annotated[float, Field(gt=0, le=1.0e6)] = 8.0
    # rows of requests.parquet (output.requests: true), held one replication at a time
    max_request_rows: Annotated[float, Field(gt=0, le=1.0e12)] = 1.0e8
    # rows of timeseries.parquet: replications x simulated minutes
    max_timeseries_rows: Annotated[float, Field(gt=0, le=1.0e12)] = 1.0e8
    # mean of a class's token-count distribution (input or output); beyond it sums risk int64 overflow
    max_mean_tokens: Annotated[float, Field(gt=0, le=1.0e12)] = 1.0e7
