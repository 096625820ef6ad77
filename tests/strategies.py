"""Shared hypothesis strategies (add to this module; do not fork it).

Configs: `valid_configs()` draws small, valid experiment dicts; `mutated_configs()` breaks one or more
places of a valid config the ways users do (deleted keys, wrong types, junk keys, NaN and infinities,
huge and negative numbers, unknown enum values) and `mutated_config_texts()` breaks the YAML text itself.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import yaml
from hypothesis import strategies as st

# -- valid configs -------------------------------------------------------------------------------------

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)


@st.composite
def token_dists(draw: st.DrawFn) -> dict[str, Any]:
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
            "input_tokens": draw(token_dists()),
            "output_tokens": draw(token_dists()),
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
    policy = draw(st.sampled_from(["gpu_only", "api_only", "by_class", "overflow"]))
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
    text = yaml.safe_dump(draw(valid_configs()), sort_keys=False)
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
