"""Shared hypothesis strategies: small, valid experiment configs that simulate in a few milliseconds.

`experiment_dicts()` draws a plain config dict (what a user would write in YAML); `experiments()` turns it
into a validated `Experiment` through the same path as a user's file (`load_config_text(yaml.safe_dump(d))`),
so every drawn config is also a valid YAML config. Sizes are bounded so that one replication sees at most
a few thousand requests: expected arrivals = mean_rps x horizon stay under ~2,500 (diurnal at most 2x that
briefly), output tokens stay under ~60 on average and iterations are explicit (no catalog derivation).

Add new knobs here (with conservative bounds) rather than forking a strategy in a test file.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import strategies as st
from pydantic import TypeAdapter

from sim.config import Experiment, load_config_text
from sim.config.distributions import DistSpec
from workloads.distributions import make_token_distribution

_DIST: TypeAdapter[Any] = TypeAdapter(DistSpec)

MAX_EXPECTED_REQUESTS = 2500.0

POLICIES_SIMPLE = ("gpu_only", "api_only")
POLICIES_ALL = ("gpu_only", "api_only", "by_class", "overflow")


def _round(x: float, digits: int = 6) -> float:
    return float(round(x, digits))


@st.composite
def token_dists(draw: st.DrawFn, max_mean: float = 60.0) -> dict[str, Any]:
    """A token-count distribution of any family the contract lists (except empirical: it needs a file)."""
    kind = draw(st.sampled_from(["constant", "geometric", "exponential", "lognormal", "gamma", "uniform"]))
    if kind == "constant":
        return {"dist": "constant", "value": draw(st.integers(1, int(max_mean)))}
    if kind == "geometric":
        return {"dist": "geometric", "mean": _round(draw(st.floats(1.0, max_mean)))}
    if kind == "exponential":
        return {"dist": "exponential", "mean": _round(draw(st.floats(0.5, max_mean)))}
    if kind == "lognormal":
        return {
            "dist": "lognormal",
            "median": _round(draw(st.floats(1.0, max_mean / 2))),
            "sigma": _round(draw(st.floats(0.0, 1.0))),
        }
    if kind == "gamma":
        return {
            "dist": "gamma",
            "mean": _round(draw(st.floats(1.0, max_mean))),
            "cv": _round(draw(st.floats(0.1, 1.5))),
        }
    low = draw(st.integers(1, int(max_mean)))
    return {"dist": "uniform", "low": low, "high": low + draw(st.integers(0, int(max_mean)))}


@st.composite
def shares(draw: st.DrawFn, n: int) -> list[float]:
    """n class shares (multiples of 1/20 or exact fractions) that sum to 1 within the validator's 1e-6."""
    if n == 1:
        return [1.0]
    cuts = sorted(draw(st.lists(st.integers(1, 19), min_size=n - 1, max_size=n - 1, unique=True)))
    edges = [0, *cuts, 20]
    return [(b - a) / 20 for a, b in zip(edges, edges[1:], strict=False)]


@st.composite
def request_classes(draw: st.DrawFn, n: int) -> list[dict[str, Any]]:
    out = []
    for i, share in enumerate(draw(shares(n))):
        cls: dict[str, Any] = {
            "name": f"c{i}",
            "share": share,
            "input_tokens": draw(token_dists(max_mean=200.0)),
            "output_tokens": draw(token_dists(max_mean=60.0)),
            "slo_ttft_s": _round(draw(st.floats(0.05, 30.0))),
            "priority": draw(st.integers(0, 2)),
        }
        if draw(st.booleans()):
            cls["timeout_s"] = _round(draw(st.floats(0.5, 60.0)))
        out.append(cls)
    return out


@st.composite
def gpu_pools(draw: st.DrawFn, servers: st.SearchStrategy[int] | None = None) -> dict[str, Any]:
    pool: dict[str, Any] = {
        "servers": draw(servers if servers is not None else st.integers(1, 4)),
        "price_per_server_hour_usd": _round(draw(st.floats(0.0, 5.0))),
        "max_batch": draw(st.integers(1, 8)),
        "iteration_s": {
            "base": _round(draw(st.floats(0.002, 0.05))),
            "per_seq": _round(draw(st.sampled_from([0.0, 0.0005, 0.002]))),
            "per_prefill_token": _round(draw(st.sampled_from([0.0, 1e-5, 1e-4])), 8),
            "per_kv_token": _round(draw(st.sampled_from([0.0, 1e-7, 1e-6])), 9),
        },
        "cold_start_s": draw(
            st.one_of(
                st.just({"dist": "constant", "value": 0}),
                st.builds(lambda v: {"dist": "constant", "value": v}, st.integers(1, 120)),
                st.builds(lambda hi: {"dist": "uniform", "low": 0, "high": hi}, st.integers(1, 120)),
            )
        ),
    }
    # a small KV budget makes some requests wait for memory and fails those that can never fit
    if draw(st.booleans()):
        pool["kv_cache_tokens"] = draw(st.integers(50, 2000))
    return pool


@st.composite
def experiment_dicts(
    draw: st.DrawFn,
    policies: tuple[str, ...] = POLICIES_SIMPLE,
    servers: st.SearchStrategy[int] | None = None,
    cache: bool | None = None,
    max_classes: int = 3,
) -> dict[str, Any]:
    """A small config dict. `cache=None` draws whether the response cache is on."""
    horizon_h = _round(draw(st.floats(0.05, 0.5)), 4)
    max_rate = MAX_EXPECTED_REQUESTS / (horizon_h * 3600.0)
    n_classes = draw(st.integers(1, max_classes))
    classes = draw(request_classes(n_classes))
    rate = _round(draw(st.floats(0.05, max_rate)), 4)
    pool = draw(gpu_pools(servers))
    # a load on the GPU pool from light to overloaded: iteration times are scaled to reach it at this rate
    load = draw(st.sampled_from([0.2, 0.6, 0.9, 1.1, 2.0]))
    scale = load * gpu_capacity_rps(classes, pool) / rate
    scale = min(max(scale, 1e-3), 2.0 / pool["iteration_s"]["base"])  # iterations of 2 us .. 2 s
    pool["iteration_s"] = {k: float(f"{v * scale:.6g}") for k, v in pool["iteration_s"].items()}
    policy = draw(st.sampled_from(policies))
    routing: dict[str, Any] = {"policy": policy}
    if policy == "by_class":
        routing["by_class"] = {c["name"]: draw(st.sampled_from(["gpu", "api", "api_batch"])) for c in classes}
    elif policy == "overflow":
        routing["overflow"] = {"max_queue": draw(st.integers(0, 4)), "target": "api"}
    use_cache = draw(st.booleans()) if cache is None else cache
    d: dict[str, Any] = {
        "name": "hyp",
        "seed": draw(st.integers(0, 2**32 - 1)),
        "replications": 2,
        "horizon_h": horizon_h,
        "warmup_h": _round(horizon_h * draw(st.sampled_from([0.0, 0.0, 0.1, 0.3])), 6),
        "start_weekday": draw(st.sampled_from(["mon", "sat"])),
        "workload": {
            "arrivals": {
                "kind": draw(st.sampled_from(["constant", "constant", "diurnal"])),
                "mean_rps": rate,
                "peak_hour": _round(draw(st.floats(0.0, 23.0)), 3),
                "peak_to_mean": _round(draw(st.floats(1.0, 2.0)), 3),
            },
            "classes": classes,
        },
        "cache": {
            "response": {
                "enabled": use_cache,
                "capacity": draw(st.integers(0, 300)),
                "ttl_s": _round(draw(st.floats(1.0, 3600.0))),
                "distinct_prompts": draw(st.integers(1, 2000)),
                "zipf_s": _round(draw(st.floats(0.5, 1.5))),
                "hit_latency_s": _round(draw(st.floats(0.0, 0.1))),
            },
            "prompt": {"cached_input_fraction": _round(draw(st.floats(0.0, 1.0)))},
        },
        "routing": routing,
        "backends": {
            "gpu_pool": pool,
            "api": {
                "output_tokens_per_s": _round(draw(st.floats(20.0, 300.0))),
                "outages": draw(
                    st.sampled_from(
                        [
                            {"mtbf_h": None, "mttr_h": 0.75},
                            {"mtbf_h": 0.1, "mttr_h": 0.02},
                            {"mtbf_h": 0.5, "mttr_h": 0.1},
                        ]
                    )
                ),
            },
        },
        "costs": {"fixed_monthly_usd": _round(draw(st.floats(0.0, 1000.0)))},
        "output": {"requests": True, "timeseries": True, "report": False},
    }
    return d


def gpu_capacity_rps(classes: list[dict[str, Any]], pool: dict[str, Any]) -> float:
    """Rough requests/s the pool sustains with full batches (for choosing loads, not for checking)."""
    it, b = pool["iteration_s"], pool["max_batch"]
    per_request_s = 0.0
    for cls in classes:
        k_in = make_token_distribution(_DIST.validate_python(cls["input_tokens"])).mean
        k_out = make_token_distribution(_DIST.validate_python(cls["output_tokens"])).mean
        iteration = it["base"] + it["per_seq"] * b + it["per_kv_token"] * b * (k_in + k_out / 2)
        per_request_s += cls["share"] * (k_out * iteration + it["per_prefill_token"] * k_in * b) / b
    return pool["servers"] / per_request_s


def to_experiment(d: dict[str, Any]) -> Experiment:
    """Validate a config dict the way a user's YAML file is validated."""
    return load_config_text(yaml.safe_dump(d, sort_keys=False))


def experiments(**kwargs: Any) -> st.SearchStrategy[Experiment]:
    return experiment_dicts(**kwargs).map(to_experiment)
