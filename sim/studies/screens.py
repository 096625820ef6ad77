"""Analytic screens: what a planner can rule out before simulating a point.

* Memory: the model's weights do not fit in the server's GPUs (`tensor_parallel` x usable HBM), so the
  point cannot be deployed (catalog-derived KV capacity below one token). Screened always.
* Throughput: a server at a full batch of average-sized requests completes
  `server_capacity_rps` requests per second (iteration time affine in the batch, so the full batch is the
  most a server can do; the KV cache caps the batch). When every request goes to the pool and waits there
  (`gpu_only`, no response or semantic cache, no timeouts) and some target bounds a latency (a `*_s`
  metric with `<=`), `servers x capacity` below the mean arrival rate of the busiest hour of the simulated
  span means the queue grows for that whole hour: the point cannot meet the target. `min_servers` is the
  smallest count that passes, so a search over servers starts there.
The screens rule points out; they never rule one in (every point that passes is simulated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sim.config import Experiment
from sim.core.calendar import HOUR_S
from sim.engine.targets import Target

SERVERS_KEY = "backends.gpu_pool.servers"


def class_token_means(exp: Experiment) -> tuple[float, float]:
    """(E[input tokens], E[output tokens]) per request over the class mix (exact means)."""
    from workloads.token_counts import make_token_distribution

    e_in = e_out = 0.0
    for c in exp.workload.classes:
        e_in += c.share * float(make_token_distribution(c.input_tokens).mean)
        e_out += c.share * float(make_token_distribution(c.output_tokens).mean)
    return e_in, e_out


def server_capacity_rps(exp: Experiment, pool: str | None = None) -> float:
    """Requests/s one server of `pool` (None: the first pool) sustains at a full batch on average-sized
    requests of the whole mix (no queueing, no SLO)."""
    from backends.gpu.catalog import derived_moe, iteration_model, kv_capacity

    pools = exp.backends.pools()
    spec = pools[pool] if pool is not None else next(iter(pools.values()))
    it = iteration_model(spec)
    e_in, e_out = class_token_means(exp)
    batch = max(1.0, min(float(spec.max_batch), kv_capacity(spec) / (e_in + e_out)))
    t_iter = (
        it.base
        + it.per_seq * batch
        + it.per_prefill_token * batch * e_in / e_out
        + it.per_kv_token * batch * (e_in + e_out / 2.0)
    )
    moe = derived_moe(spec)
    if moe is not None:
        t_iter += moe.seconds(batch)
    return batch / (e_out * t_iter)


def memory_problem(exp: Experiment) -> str | None:
    """Why a pool's model does not fit its servers' GPUs, or None when every pool's fits (or its KV size is
    given)."""
    from backends.gpu.catalog import derived_kv_tokens, gpu_of, model_of, usable_gb

    for name, spec in exp.backends.pools().items():
        if spec.kv_cache_tokens is not None or derived_kv_tokens(spec) >= 1:
            continue
        m, g = model_of(spec), gpu_of(spec)
        need = m.weight_bytes(spec.quantization) / 1e9
        have = usable_gb(spec) * spec.tensor_parallel
        where = f"{spec.tensor_parallel} x {g.name}" + (f" (pool {name})" if exp.backends.gpu_pools else "")
        return f"memory: {m.name} weights {need:.1f} GB > {have:.1f} GB usable on {where}"
    return None


def peak_hour_rps(exp: Experiment) -> float | None:
    """The mean arrival rate of the busiest whole hour of the simulated span (None for traces, bursts,
    over-dispersed or session arrivals, whose rate is not one curve)."""
    from workloads.generator import PoissonSource
    from workloads.synthetic import needs_synthetic

    if exp.workload.arrivals.kind == "trace" or needs_synthetic(exp):
        return None
    span_s = exp.horizon_h * HOUR_S
    curve = PoissonSource(exp, 0, span_s).curve
    hours = max(1, math.floor(span_s / HOUR_S + 1e-9))
    width = min(HOUR_S, span_s)
    return max(curve.total(h * HOUR_S, h * HOUR_S + width) / width for h in range(hours))


def bounds_latency(targets: Sequence[Target]) -> bool:
    return any(t.metric.endswith("_s") and t.op == "<=" for t in targets)


def throughput_applies(exp: Experiment, targets: Sequence[Target]) -> bool:
    """Whether the throughput screen is sound here: every request reaches the one pool and waits there until
    served (no cache answers it, no timeout drops it), and a latency is bounded."""
    return (
        exp.routing.policy == "gpu_only"
        and not exp.routing.by_size
        and not exp.cache.response.enabled
        and not exp.cache.semantic.enabled
        and all(c.timeout_s is None for c in exp.workload.classes)
        and bounds_latency(targets)
        and peak_hour_rps(exp) is not None
    )


def min_servers(exp: Experiment, targets: Sequence[Target]) -> int | None:
    """The fewest servers whose full-batch throughput reaches the busiest hour's rate (None when the screen
    does not apply)."""
    if not throughput_applies(exp, targets):
        return None
    rate = peak_hour_rps(exp)
    assert rate is not None
    return max(1, math.ceil(rate / server_capacity_rps(exp) - 1e-9))


def fixed_pool_monthly_usd(exp: Experiment) -> float:
    """A floor under a point's monthly cost, without simulating it (the plan's opt-in cost screen): every
    used GPU pool of a fixed count (no autoscaler, no schedule) is paid for the whole month (its servers are
    provisioned at t = 0 and stay, cold starts and repairs included: backends.gpu.ledger), servers x price
    per server-hour x `costs.hours_per_month`; every other part of the bill is >= 0."""
    from backends.gpu.catalog import server_price
    from sim.engine.bill import used_pools

    total = 0.0
    for spec in used_pools(exp).values():
        if spec.autoscaler.enabled or spec.schedule is not None:
            continue
        total += spec.servers * server_price(spec).usd_per_hour * exp.costs.hours_per_month
    return total
