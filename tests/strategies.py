"""Shared hypothesis strategies: add to this module; do not fork it.

Simulation configs: `experiment_dicts()` draws a plain config dict (what a user would write in YAML);
`experiments()` turns it into a validated `Experiment` through the same path as a user's file
(`load_config_text(yaml12.dump(d))`). Sizes are bounded so that one replication sees at most a few thousand
requests: expected arrivals = mean_rps x horizon stay under ~2,500, output tokens stay under ~60 on average
and iterations are explicit (no catalog derivation).

Malformed configs: `valid_configs()` draws small, valid experiment dicts; `mutated_configs()` breaks one or
more places of a valid config the ways users do (deleted keys, wrong types, junk keys, NaN and infinities,
huge and negative numbers, unknown enum values) and `mutated_config_texts()` breaks the YAML text itself.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from pydantic import TypeAdapter

from backends.routing.registry import policy_names
from sim.config import Experiment
from sim.config.distributions import DistSpec
from sim.engine import yaml12
from sim.engine.loading import load_config_text
from workloads.token_counts import make_token_distribution

_DIST: TypeAdapter[Any] = TypeAdapter(DistSpec)

MAX_EXPECTED_REQUESTS = 2500.0

POLICIES_SIMPLE = ("gpu_only", "api_only")
POLICIES_ALL = tuple(policy_names())  # every policy of backends/routing/policies/


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


def _least_tokens(dist: dict[str, Any]) -> int:
    """A lower bound on a token distribution's draws (as sim.config.checks bounds them)."""
    if dist["dist"] == "constant":
        return max(1, int(dist["value"]))
    if dist["dist"] == "uniform":
        return max(1, int(dist["low"]))
    return 1


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
    if "kv_cache_tokens" in pool:  # room for at least every class's smallest request (else refused at validate)
        least = max(_least_tokens(c["input_tokens"]) + _least_tokens(c["output_tokens"]) for c in classes)
        pool["kv_cache_tokens"] = max(pool["kv_cache_tokens"], 16 * (least // 16 + 1))  # 16-token blocks
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
    return load_config_text(yaml12.dump(d, sort_keys=False))


def experiments(**kwargs: Any) -> st.SearchStrategy[Experiment]:
    return experiment_dicts(**kwargs).map(to_experiment)


# -- malformed configs ----------------------------------------------------------------------------
NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)


@st.composite
def fuzz_token_dists(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["constant", "exponential", "geometric", "lognormal", "gamma", "uniform"]))
    if kind == "constant":
        return {"dist": "constant", "value": draw(st.integers(1, 4000))}
    if kind == "exponential":
        return {"dist": "exponential", "mean": draw(st.floats(1, 3000))}
    if kind == "geometric":
        return {"dist": "geometric", "mean": draw(st.floats(1, 3000))}
    if kind == "lognormal":
        return {"dist": "lognormal", "median": draw(st.floats(1, 3000)), "sigma": draw(st.floats(0, 2))}
    if kind == "gamma":
        return {"dist": "gamma", "mean": draw(st.floats(1, 3000)), "cv": draw(st.floats(0.1, 3))}
    low = draw(st.integers(1, 2000))
    return {"dist": "uniform", "low": low, "high": low + draw(st.integers(0, 2000))}


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A small valid experiment as a plain dict (what YAML would give)."""
    n_classes = draw(st.integers(1, 3))
    names = draw(st.lists(NAMES, min_size=n_classes, max_size=n_classes, unique=True))
    shares = [1.0 / n_classes] * n_classes
    classes = []
    for name, share in zip(names, shares, strict=True):
        cls: dict[str, Any] = {
            "name": name,
            "share": share,
            "input_tokens": draw(fuzz_token_dists()),
            "output_tokens": draw(fuzz_token_dists()),
            "slo_ttft_s": draw(st.floats(0.1, 3600)),
        }
        if draw(st.booleans()):
            cls["timeout_s"] = draw(st.floats(1, 600))
        if draw(st.booleans()):
            cls["priority"] = draw(st.integers(0, 9))
        classes.append(cls)
    kind = draw(st.sampled_from(["constant", "diurnal", "hourly"]))
    arrivals: dict[str, Any] = {"kind": kind, "mean_rps": draw(st.floats(0, 50))}
    if kind == "hourly":
        arrivals["multipliers"] = draw(st.lists(st.floats(0.1, 5), min_size=24, max_size=24))
    if kind == "diurnal":
        arrivals["peak_hour"] = draw(st.floats(0, 23.5))
        arrivals["peak_to_mean"] = draw(st.floats(1, 5))
    policy = draw(st.sampled_from(POLICIES_ALL))
    routing: dict[str, Any] = {"policy": policy}
    if policy == "by_class":
        routing["by_class"] = {n: draw(st.sampled_from(["gpu", "api", "api_batch"])) for n in names}
    horizon = draw(st.floats(0.1, 48))
    return {
        "name": draw(NAMES),
        "seed": draw(st.integers(0, 2**32)),
        "replications": draw(st.integers(1, 50)),
        "horizon_h": horizon,
        "warmup_h": draw(st.floats(0, horizon * 0.5)),
        "start_weekday": draw(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])),
        "workload": {"arrivals": arrivals, "classes": classes},
        "cache": {
            "response": {"enabled": draw(st.booleans()), "capacity": draw(st.integers(0, 10**6))},
            "prompt": {"cached_input_fraction": draw(st.floats(0, 1))},
        },
        "routing": routing,
        "backends": {
            "gpu_pool": {
                "servers": draw(st.integers(0, 16)),
                "gpu": draw(st.sampled_from(["h100", "h200", "a100-80gb", "l40s"])),
                "model": draw(st.sampled_from(["llama-3-8b", "mistral-7b"])),
                "max_batch": draw(st.integers(1, 256)),
            },
            "api": {"price_output_per_mtok_usd": draw(st.floats(0, 100))},
        },
        "costs": {"fixed_monthly_usd": draw(st.floats(0, 1e5))},
        "output": {"report": False},
    }


# -- breaking them -------------------------------------------------------------------------------------

JUNK_VALUES = st.one_of(
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.just(1e308),
    st.just(-1e308),
    st.just(10**30),
    st.just(-(10**30)),
    st.just(-1),
    st.just(0),
    st.just(""),
    st.just("not-a-thing"),
    st.just("1e3"),
    st.just(None),
    st.just(True),
    st.just([]),
    st.just({}),
    st.just([1, "a", None]),
    st.just({"dist": "zipf"}),
    st.just({"unknown": 1}),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    node = data
    for part in path[:-1]:
        node = node[part]
    return node


MUTATIONS = ("delete", "replace", "junk_key", "wrong_enum", "scale")


@st.composite
def mutated_configs(draw: st.DrawFn, max_mutations: int = 3) -> tuple[dict[str, Any], list[str]]:
    """A valid config broken in 1..max_mutations places; returns (data, what was done)."""
    data = copy.deepcopy(draw(valid_configs()))
    done: list[str] = []
    for _ in range(draw(st.integers(1, max_mutations))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(data, path)
        key = path[-1]
        how = draw(st.sampled_from(MUTATIONS))
        if how == "delete":
            del parent[key]
        elif how == "replace":
            parent[key] = copy.deepcopy(draw(JUNK_VALUES))  # st.just shares one object between draws
        elif how == "junk_key":
            target = parent[key] if isinstance(parent[key], dict) else parent
            if isinstance(target, dict):
                target[draw(st.text(min_size=1, max_size=10))] = copy.deepcopy(draw(JUNK_VALUES))
        elif how == "wrong_enum":
            parent[key] = draw(st.sampled_from(["bogus", "GPU_ONLY", "Mon", "lognormall", "h1000", "api:nope"]))
        else:
            value = parent[key]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                parent[key] = value * draw(st.sampled_from([-1, 10**6, 10**12, 1e300, -1e-300]))
        done.append(f"{how} {'.'.join(map(str, path))}")
    return data, done


@st.composite
def mutated_config_texts(draw: st.DrawFn) -> str:
    """The YAML text of a valid config, damaged as text: truncated, spliced with junk, re-indented, tagged."""
    text = yaml12.dump(draw(valid_configs()), sort_keys=False)
    how = draw(st.sampled_from(["truncate", "insert", "indent", "tag", "dupe_line", "delete_line"]))
    lines = text.splitlines(keepends=True)
    if how == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if how == "insert":
        at = draw(st.integers(0, len(text)))
        junk = draw(
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(["\t", ":", "- ", "{", "]", "&a", "*a", "!!", "\x00", "'", '"', "? ", "|", "%"]),
            )
        )
        return text[:at] + junk + text[at:]
    i = draw(st.integers(0, max(0, len(lines) - 1)))
    if how == "indent":
        lines[i] = " " * draw(st.integers(1, 7)) + lines[i]
    elif how == "tag":
        tag = draw(
            st.sampled_from(
                [
                    "!!python/object/apply:os.system ['true']",
                    "!!python/name:os.system",
                    "!!python/object:builtins.dict {}",
                    "!custom 1",
                    "!!binary aGVsbG8=",
                    "!!set {a, b}",
                ]
            )
        )
        head, sep, _ = lines[i].partition(": ")
        lines[i] = f"{head}: {tag}\n" if sep else f"{tag}\n"
    elif how == "dupe_line":
        lines.insert(i, lines[i])
    else:
        del lines[i]
    return "".join(lines)


# -- one GPU server: workloads with batching and KV parameters -------------------------------------
@dataclass(frozen=True)
class GpuCase:
    """A small workload for one GPU server plus the server's batching and KV parameters."""

    arrivals: list[float]
    inputs: list[int]
    outputs: list[int]
    priorities: list[int]
    base: float
    per_seq: float
    per_prefill: float
    per_kv: float
    max_batch: int
    kv_tokens: int
    paged: bool
    block: int
    chunk: int | None


TICK = 2.0**-11  # s: the grid of gpu_cases times


@st.composite
def gpu_cases(draw: st.DrawFn, max_requests: int = 40) -> GpuCase:
    n = draw(st.integers(1, max_requests))
    # Times on a dyadic grid (multiples of 2**-11 s, coefficients of 2**-k): every sum the pool and the
    # per-iteration reference form is exact in floating point, so a tie between an arrival and an iteration
    # boundary is a tie in both (the semantics decide it), never one ulp apart in one of them only.
    gaps = [g * TICK for g in draw(st.lists(st.integers(1, 400), min_size=n, max_size=n))]
    arrivals, t = [], 0.0
    for g in gaps:
        t += g
        arrivals.append(t)
    paged = draw(st.sampled_from([True, True, True, False]))
    block = draw(st.sampled_from([1, 4, 16])) if paged else 1
    inputs = draw(st.lists(st.integers(1, 120), min_size=n, max_size=n))
    outputs = draw(st.lists(st.integers(1, 60), min_size=n, max_size=n))
    biggest = max(i + o for i, o in zip(inputs, outputs, strict=True))
    # tight memory: between what the biggest request needs alone and a few times that
    kv_tokens = draw(st.integers(biggest + block, 4 * biggest + 4 * block))
    return GpuCase(
        arrivals=arrivals,
        inputs=inputs,
        outputs=outputs,
        priorities=draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)),
        base=draw(st.integers(2, 40)) * TICK,  # 0.98 .. 19.5 ms
        per_seq=draw(st.sampled_from([0.0, 2.0**-12, 2.0**-10])),  # 0, 0.24, 0.98 ms
        per_prefill=draw(st.sampled_from([0.0, 2.0**-17, 2.0**-13])),  # 0, 7.6, 122 us
        per_kv=draw(st.sampled_from([0.0, 2.0**-20, 2.0**-15])),  # 0, 0.95, 30.5 us
        max_batch=draw(st.integers(1, 12)),
        kv_tokens=kv_tokens,
        paged=paged,
        block=block,
        chunk=draw(st.sampled_from([None, None, 16, 64, 200])),
    )


@st.composite
def replication_proportions(draw: st.DrawFn) -> list[float]:
    """A metric that is a proportion across 1..40 replications: often on or near a bound (availability)."""
    n = draw(st.integers(1, 40))
    near = st.floats(0.0, 1e-3).map(lambda e: 1.0 - e)
    value = st.one_of(st.just(1.0), st.just(0.0), near, st.floats(0.0, 1.0))
    return draw(st.lists(value, min_size=n, max_size=n))


@st.composite
def speculations(draw: st.DrawFn) -> dict[str, Any]:
    """A pool's `speculative` section with n-gram drafting: k draft tokens, acceptance from never to always."""
    k = draw(st.integers(1, 6))
    return {"draft": "ngram", "k": k, "acceptance": draw(st.sampled_from([0.0, 0.3, 0.5, 0.8, 0.95, 1.0]))}
