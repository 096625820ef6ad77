"""Variants of an experiment: the same config with some dotted keys changed (sweeps, plan candidates).

A variant keeps the root seed, so replication r of every variant draws the same arrivals, sizes and cache
keys (sim.rng streams are addressed by replication and component): differences between variants are paired.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.config import Experiment
from sim.config.errors import ConfigError, Problem, format_pydantic
from sim.engine.checks import cross_section_problems, data_problems, kv_problems
from sim.engine.yaml12 import load_scalar


def format_value(value: Any) -> str:
    """A value as `--set` would take it back (YAML scalar text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return repr(value)
        text = repr(value)
        return text if ("e" not in text or "." in text) else text.replace("e", ".0e", 1)
    return str(value)


def _set_path(data: dict[str, Any], key: str, value: Any) -> None:
    apply_overrides(data, [f"{key}={format_value(value)}"])
    # apply_overrides parses the text back as YAML; make sure the exact value lands (strings stay strings)
    node: Any = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def derive(
    exp: Experiment, changes: Sequence[tuple[str, Any]], base_dir: Path | None = None, checks: bool = True
) -> Experiment:
    """The experiment with each (dotted key, value) applied and everything revalidated.

    The `sweep` section is dropped from the variant (a variant is a single point). Raises ConfigError with
    the dotted path of every problem. With `checks=False`, only the models' own validation runs (not the
    checks across sections, files and the catalog): for a planner's screens, which explain a point that
    cannot be deployed better than its ConfigError would.
    """
    data = exp.model_dump(mode="json")
    data["sweep"] = {}
    _drop_derived(exp, data, [key for key, _ in changes])
    for key, value in changes:
        _set_path(data, key, value)
    try:
        out = Experiment.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        problems = [Problem(".".join(map(str, e["loc"])), None, format_pydantic(dict(e))) for e in err.errors()]
        raise ConfigError(problems) from None
    cross = run_problems(out, base_dir) if checks else []
    if cross:
        raise ConfigError([Problem(p, None, m) for p, m in cross])
    return out


def _drop_derived(exp: Experiment, data: dict[str, Any], keys: list[str]) -> None:
    """Remove from the dump what validation derived rather than was given, so that it is derived again
    from the changed config: mean_rps from workload.users (unless the change sets mean_rps, which then
    replaces the users), and API prices from a preset (the prices given explicitly stay)."""
    workload = data.get("workload", {})
    if exp.workload.users is not None:
        if "workload.arrivals.mean_rps" in keys:
            workload["users"] = None
        else:
            workload.get("arrivals", {}).pop("mean_rps", None)
    from sim.config.api import PRESET_PRICE_FIELDS

    backends = data.get("backends", {})
    apis = [(backends.get("api"), exp.backends.api)]
    apis += [(backends.get("apis", {}).get(name), spec) for name, spec in exp.backends.apis.items()]
    for node, spec in apis:
        if isinstance(node, dict) and spec.preset is not None:
            for field in PRESET_PRICE_FIELDS:
                if field not in spec.model_fields_set:
                    node.pop(field, None)


def parse_scalar(text: str) -> Any:
    v = load_scalar(text)
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"{text!r} is not a finite number")
    if isinstance(v, (dict, list)):
        return text
    return v


def parse_assignment_list(text: str) -> tuple[str, list[Any]]:
    """'KEY=V1,V2,...' -> (KEY, [values parsed as YAML scalars])."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise ValueError(f"expected KEY=V1,V2,..., got {text!r}")
    values = [parse_scalar(v.strip()) for v in raw.split(",") if v.strip()]
    if not values:
        raise ValueError(f"no values in {text!r}")
    return key, values


def _parse_scalar(text: str) -> Any:
    return load_scalar(text)


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply `dotted.key=value` overrides (values parsed as YAML scalars); list items by index."""
    problems: list[Problem] = []
    for item in overrides:
        if "=" not in item:
            problems.append(Problem(f"--set {item}", None, "expected KEY=VALUE"))
            continue
        key, _, raw = item.partition("=")
        parts = [p for p in key.strip().split(".")]
        if not all(parts):
            problems.append(Problem(f"--set {item}", None, "empty key segment"))
            continue
        node: Any = data
        ok = True
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    problems.append(Problem(".".join(parts[: i + 1]), None, f"no list item {part}"))
                    ok = False
                    break
                node = node[int(part)]
            elif isinstance(node, dict):
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
            else:
                problems.append(Problem(".".join(parts[:i]), None, "is not a mapping; cannot set a key in it"))
                ok = False
                break
        if not ok:
            continue
        last = parts[-1]
        value = _parse_scalar(raw)
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            problems.append(Problem(key, None, "cannot set this key"))
    if problems:
        raise ConfigError(problems)
    return data


def sweep_and_limit_problems(exp: Experiment, base_dir: Path | None = None) -> list[tuple[str, str]]:
    """The run's size limits and its `sweep:` grid, in one pass: the grid's size first (before any point is
    built), then every swept value as its own point (the first bad value of each key), then the limits at
    the single-key point with the most events (the grid's point estimate)."""
    from sim.engine.limits import estimate_run, limit_problems

    problems = limit_problems(exp, base_dir)
    if problems or not exp.sweep:
        return problems
    worst, most = None, -1.0
    for key, values in exp.sweep.items():
        for v in values:
            try:
                point = derive(exp, [(key, v)], base_dir)
            except ConfigError as exc:
                problems.extend((f"sweep.{key}", f"value {v!r}: {p.path}: {p.message}") for p in exc.problems)
                break
            events = estimate_run(point, base_dir).total_events
            if events > most:
                worst, most = point, events
    return problems or limit_problems(exp, base_dir, worst)


def run_problems(exp: Experiment, base_dir: Path | None = None) -> list[tuple[str, str]]:
    """Everything a run would refuse or trip over, as (dotted path, message); [] when it can run."""
    problems = cross_section_problems(exp)
    if problems:
        return problems
    problems = data_problems(exp, base_dir)
    if problems:
        return problems
    problems = kv_problems(exp, base_dir)
    if problems:
        return problems
    return sweep_and_limit_problems(exp, base_dir)
