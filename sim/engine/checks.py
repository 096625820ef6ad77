"""Every check a run would make, made once on a validated experiment: at `capsim validate`, on every `--set`,
on each sweep point and each plan/breakeven variant (sim.variants.derive), before any replication starts.

`run_problems` gathers, as (dotted path, message): the checks that span sections, the data files (traces and
every empirical distribution, wherever it sits: token counts must be whole numbers >= 1, durations >= 0),
and the run's size against `limits`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from backends.gpu.catalog import catalog_problems
from backends.gpu.engine_checks import engine_problems
from backends.gpu.server_policy import server_policy_of, unknown_server_policy_message
from backends.routing.registry import policy_of, unknown_policy_message
from sim.config.backends import GpuPoolSpec
from sim.config.experiment import Experiment
from sim.config.routing import parse_route
from sim.engine.routing_checks import escalate_problems, fallback_problems, size_rule_problems, target_problems

INT64_MAX = 2**63 - 1


def dist_specs(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, spec) of every distribution spec in a config model, wherever it sits."""
    if isinstance(node, BaseModel):
        if "dist" in type(node).model_fields:
            yield path, node
            return
        for name in type(node).model_fields:
            yield from dist_specs(getattr(node, name), f"{path}.{name}" if path else name)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from dist_specs(v, f"{path}.{i}")
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from dist_specs(v, f"{path}.{k}")


def is_count(path: str) -> bool:
    """Token counts and turns are whole numbers >= 1."""
    last = path.rsplit(".", 1)[-1]
    return last.endswith("_tokens") or last == "turns"


def _empirical_problems(path: str, spec: Any, base_dir: Path | None) -> list[tuple[str, str]]:
    import numpy as np  # here and below, not at the top: `capsim validate` of a config without files needs no numpy

    from workloads.files import read_column

    try:
        values = read_column(spec.file, spec.column, base_dir)
    except FileNotFoundError as exc:
        return [(f"{path}.file", str(exc))]
    except (ValueError, OSError) as exc:
        where = "column" if "column" in str(exc) and "no column" in str(exc) else "file"
        return [(f"{path}.{where}", f"cannot use this file: {exc}")]
    if is_count(path):
        bad = np.flatnonzero((values < 1) | (values != np.floor(values)))
        if bad.size:
            row = int(bad[0])
            why = "below 1" if values[row] < 1 else "not a whole number"
            return [
                (
                    f"{path}.column",
                    f"{spec.file}: column {spec.column!r} holds {bad.size} value(s) {why} (first at data row "
                    f"{row + 1}); token counts and turns are whole numbers >= 1, and capsim refuses to round "
                    "or clip them",
                )
            ]
        if values.max() > 1e12:
            return [(f"{path}.column", f"{spec.file}: column {spec.column!r} holds counts above 1e12")]
    elif (values < 0).any():
        row = int(np.flatnonzero(values < 0)[0])
        return [
            (
                f"{path}.column",
                f"{spec.file}: column {spec.column!r} holds negative values (first at data row {row + 1}); "
                "durations cannot be negative, and capsim refuses to clip them",
            )
        ]
    return []


def _count_spec_problems(path: str, spec: Any) -> list[tuple[str, str]]:
    if spec.dist == "constant" and float(spec.value) != math.floor(spec.value):
        return [(f"{path}.value", f"a count must be a whole number, got {spec.value} (capsim refuses to round it)")]
    if spec.dist == "uniform" and spec.high < 1:
        return [(f"{path}.high", f"a count is >= 1, but uniform({spec.low}, {spec.high}) never reaches 1")]
    return []


def _trace_problems(exp: Experiment, base_dir: Path | None) -> list[tuple[str, str]]:
    from workloads.files import resolve_data_file
    from workloads.trace import load_trace

    arrivals = exp.workload.arrivals
    try:
        resolve_data_file(arrivals.file or "", base_dir)
    except FileNotFoundError as exc:
        return [("workload.arrivals.file", str(exc))]
    try:
        trace = load_trace(arrivals, base_dir)
    except (ValueError, OSError, OverflowError) as exc:
        return [("workload.arrivals.file", f"cannot replay this trace: {exc}")]
    if arrivals.loop:
        n, duration = trace.size, trace.duration_s
        if n < 2 or duration <= 0:
            return [
                (
                    "workload.arrivals.loop",
                    f"loop needs a trace with at least two distinct times; {arrivals.file} has {n} request(s) "
                    f"spanning {duration:g} s",
                )
            ]
        period = duration * n / (n - 1) / arrivals.speed
        if period < 1e-3:
            return [
                (
                    "workload.arrivals.speed",
                    f"the looped trace would repeat every {period:.3g} s (duration {duration:.3g} s / speed "
                    f"{arrivals.speed:g}); a period under 1 ms is not a trace replay",
                )
            ]
    return []


def data_problems(exp: Experiment, base_dir: Path | None) -> list[tuple[str, str]]:
    """Traces and empirical distributions anywhere in the config, read as the run would read them."""
    problems: list[tuple[str, str]] = []
    if exp.workload.arrivals.kind == "trace":
        problems.extend(_trace_problems(exp, base_dir))
    for path, spec in dist_specs(exp):
        if spec.dist == "empirical":
            problems.extend(_empirical_problems(path, spec, base_dir))
        elif is_count(path):
            problems.extend(_count_spec_problems(path, spec))
    return problems


def _token_bounds(spec: Any, base_dir: Path | None) -> tuple[int, float]:
    """Lower and upper bounds on a token-count distribution's draws (counts are whole numbers >= 1; the upper
    bound is inf where the distribution has no finite one). An empirical column is read once for both."""
    if spec.dist == "constant":
        v = max(1, int(spec.value))
        return v, v
    if spec.dist == "uniform":
        return max(1, math.floor(spec.low)), max(1, math.ceil(spec.high))
    if spec.dist == "empirical":
        import numpy as np

        from workloads.files import read_column

        column = read_column(spec.file, spec.column, base_dir)
        return max(1, int(np.min(column))), max(1, int(np.max(column)))
    return 1, math.inf


def _size_routes(exp: Experiment, i: int, target: str, base_dir: Path | None) -> list[tuple[str, int, str | None]]:
    """Where class i's requests can go by prompt size: (target, the smallest prompt that goes there, the
    by_size rule's dotted path or None for the class's own target). `routing.by_size` is read as the router
    applies it: the first rule whose threshold a prompt passes decides, so a rule sees only prompts no earlier
    rule took."""
    c = exp.workload.classes[i]
    least, most = _token_bounds(c.input_tokens, base_dir)
    routes: list[tuple[str, int, str | None]] = []
    below: float = math.inf  # prompts longer than this were taken by an earlier rule
    for k, rule in enumerate(exp.routing.by_size):
        if rule.classes is not None and c.name not in rule.classes:
            continue
        lo = max(least, rule.when.input_tokens_gt + 1)
        if lo <= min(below, most):
            routes.append((rule.to, lo, f"routing.by_size.{k}"))
        below = min(below, rule.when.input_tokens_gt)
    if least <= below:
        routes.append((target, least, None))
    return routes


def kv_problems(exp: Experiment, base_dir: Path | None) -> list[tuple[str, str]]:
    """A GPU pool whose KV cache cannot hold even the smallest request of a class it serves would fail every
    one of them (`kv_cache_tokens: 1` ran with availability 0): refused, naming the class and the sizes. A
    `routing.by_size` rule that sends a class's prompts over its threshold to a pool is checked the same way, from
    the smallest prompt it sends there. With a fallback configured such requests go there instead (a deliberate
    "too large for the GPU" route): allowed."""
    from backends.gpu.catalog import kv_blocks, kv_capacity

    routing = exp.routing
    if routing.fallback != "none":
        return []
    targets = policy_of(routing.policy).class_targets(routing, [c.name for c in exp.workload.classes])
    pools = exp.backends.pools()
    first = next(iter(pools))
    problems = []
    for i, c in enumerate(exp.workload.classes):
        least_out, _ = _token_bounds(c.output_tokens, base_dir)
        for target, least_in, rule in _size_routes(exp, i, targets[i], base_dir):
            route = parse_route(target)
            if route.kind != "gpu":
                continue
            name = route.provider or first
            pool = pools[name]
            paged = pool.kv_policy == "paged"
            # what one request may hold: whole blocks when paged (its last token may sit in a new block's first slot)
            most = kv_blocks(pool) * pool.kv_block_tokens + 1 if paged else kv_capacity(pool)
            least = least_in + least_out
            if least > most:
                what = f"the smallest request of class {c.name!r} (workload.classes.{i})"
                if rule is not None:
                    what = f"the smallest request {rule} sends there from class {c.name!r} (workload.classes.{i})"
                problems.append(
                    (
                        f"{exp.backends.pool_key(name)}.kv_cache_tokens",
                        f"the KV cache holds {most} token(s) per request, but {what} needs {least} (prompt + "
                        "output): every such request would fail; give more KV memory (or leave kv_cache_tokens "
                        "unset to derive it)",
                    )
                )
    return problems


def cross_section_problems(exp: Experiment) -> list[tuple[str, str]]:
    """Problems that need two sections to see: (dotted path, message)."""
    unknown = unknown_policy_message(exp.routing.policy)
    if unknown is not None:
        return [("routing.policy", unknown)]
    problems: list[tuple[str, str]] = []
    names = {c.name for c in exp.workload.classes}
    for cls_name, target in exp.routing.by_class.items():
        if cls_name not in names:
            problems.append(
                (
                    f"routing.by_class.{cls_name}",
                    f"names unknown class {cls_name!r}; classes: " + ", ".join(sorted(names)),
                )
            )
        problems.extend(target_problems(exp, f"routing.by_class.{cls_name}", target))
    problems.extend(policy_of(exp.routing.policy).problems(exp))
    problems.extend(escalate_problems(exp))
    problems.extend(size_rule_problems(exp))
    problems.extend(target_problems(exp, "routing.overflow.target", exp.routing.overflow.target))
    problems.extend(fallback_problems(exp))
    if parse_route(exp.routing.overflow.target).kind == "none":
        problems.append(("routing.overflow.target", "an overflow goes to a backend: a GPU pool or an API, not none"))
    problems.extend(arrival_problems(exp))
    for name, spec in exp.backends.pools().items():
        key = exp.backends.pool_key(name)
        catalog = catalog_problems(spec) or engine_problems(spec)  # the engine's checks need a known GPU
        problems.extend((key + path.removeprefix("backends.gpu_pool"), m) for path, m in catalog)
        problems.extend(server_routing_problems(exp, key, spec))
    problems.extend(disaggregation_problems(exp))
    return problems


def disaggregation_problems(exp: Experiment) -> list[tuple[str, str]]:
    """A prefill pool names another named pool that decodes the same model; a decode pool is reached only
    through its prefill pool and neither prefills nor routes by prefix itself."""
    backends = exp.backends
    if backends.gpu_pool.disaggregation is not None:
        return [
            ("backends.gpu_pool.disaggregation", "a prefill pool needs a decode pool: give both in backends.gpu_pools")
        ]
    pools = backends.pools()
    problems: list[tuple[str, str]] = []
    decoders = set()
    for name, spec in pools.items():
        d = spec.disaggregation
        if d is None:
            continue
        key = f"backends.gpu_pools.{name}.disaggregation.decode_pool"
        other = pools.get(d.decode_pool)
        if other is None or d.decode_pool == name:
            choices = ", ".join(n for n in pools if n != name) or "none"
            problems.append((key, f"names no other pool of backends.gpu_pools ({d.decode_pool!r}; pools: {choices})"))
            continue
        if other.disaggregation is not None:
            problems.append((key, f"{d.decode_pool!r} is itself a prefill pool: a decode pool only decodes"))
        if (other.model, other.quantization, other.kv_cache_dtype) != (
            spec.model,
            spec.quantization,
            spec.kv_cache_dtype,
        ):
            problems.append(
                (key, f"{d.decode_pool!r} serves another model, quantization or kv_cache_dtype: its KV would not fit")
            )
        decoders.add(d.decode_pool)
    for name in sorted(decoders):
        spec = pools[name]
        key = f"backends.gpu_pools.{name}"
        if spec.prefix_cache.enabled or spec.server_routing.policy != "least_loaded":
            problems.append(
                (f"{key}.server_routing.policy", "a decode pool receives its prompts' KV: no prefix routing")
            )
    if decoders:
        from backends.routing.router import Router  # the simulator's modules: only for a disaggregated pool

        for name in sorted(decoders & Router.targeted_pools(exp)):
            problems.append(
                (
                    f"backends.gpu_pools.{name}",
                    "a decode pool is reached through its prefill pool: route no requests to it",
                )
            )
        if exp.routing.escalate:
            problems.append(("routing.escalate", "cascades are not modelled with prefill/decode disaggregation"))
    return problems


def server_routing_problems(exp: Experiment, key: str, spec: GpuPoolSpec) -> list[tuple[str, str]]:
    """A pool's server routing names a policy; prefix affinity needs the servers' prefix caches, which
    replace the global one (cache.prefix) rather than stack on it."""
    policy = spec.server_routing.policy
    unknown = unknown_server_policy_message(policy)
    if unknown is not None:
        return [(f"{key}.server_routing.policy", unknown)]
    problems: list[tuple[str, str]] = []
    if server_policy_of(policy).needs_prefix_cache and not spec.prefix_cache.enabled:
        problems.append(
            (f"{key}.server_routing.policy", f"{policy} routes by the servers' prefix caches: set prefix_cache.enabled")
        )
    if spec.prefix_cache.enabled and exp.cache.prefix.enabled:
        problems.append(
            (
                f"{key}.prefix_cache.enabled",
                "the servers' prefix caches replace the global one: disable cache.prefix or this",
            )
        )
    return problems


def arrival_problems(exp: Experiment) -> list[tuple[str, str]]:
    """What the arrival models must confirm: a named profile exists, an index of dispersion is reachable."""
    arr = exp.workload.arrivals
    out: list[tuple[str, str]] = []
    if arr.kind in ("hourly", "profile") and arr.profile is not None:
        from workloads.named_profiles import normalise_name, profile_names  # numpy: only a named profile's check

        known = profile_names()
        if normalise_name(arr.profile) not in known:
            out.append(("workload.arrivals.profile", f"unknown profile {arr.profile!r}; profiles: {', '.join(known)}"))
    od = arr.overdispersion
    if od is not None and od.index_of_dispersion is not None and arr.mean_rps > 0:
        from workloads.overdispersion import cv_for_index_of_dispersion  # numpy: only with an index of dispersion

        try:
            cv_for_index_of_dispersion(od.index_of_dispersion, arr.mean_rps, od.window_s, od.correlation_s)
        except ValueError as exc:
            out.append(("workload.arrivals.overdispersion.index_of_dispersion", str(exc)))
    return out
