"""Load an experiment from YAML: safe parsing, `--set` overrides, errors located by dotted path and line.

`yaml.safe_load` loses line numbers, so the document is also composed into a node tree, and each
pydantic error path is walked down that tree to the line of the key (or of its nearest parent).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.config.experiment import Experiment

MAX_CONFIG_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.path or "<document>"
        return f"{where} (line {self.line}): {self.message}" if self.line else f"{where}: {self.message}"


class ConfigError(Exception):
    """A user's config is wrong; carries every problem found."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _node_line(root: yaml.Node | None, path: Sequence[str | int]) -> int | None:
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


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


def _format_pydantic(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key (not allowed here)"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        ctx = err.get("ctx", {})
        bound = next(iter(ctx.values())) if ctx else "?"
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        return f"must be {op} {bound}, got {err.get('input')!r}"
    if kind == "finite_number":
        return f"must be a finite number, got {err.get('input')!r}"
    if kind == "missing":
        return "required key is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind in ("literal_error", "union_tag_invalid", "enum"):
        return f"{msg}, got {err.get('input')!r}"
    return msg


def _loc_path(loc: Sequence[Any]) -> list[str | int]:
    # drop discriminator tags that pydantic inserts into union locations
    dist_tags = {"constant", "exponential", "geometric", "lognormal", "gamma", "uniform", "pareto", "empirical"}
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and part in dist_tags and i > 0 and i < len(loc) - 0:
            prev = loc[i - 1]
            if isinstance(prev, str) and prev.endswith(("_tokens", "_s")):
                continue
        out.append(part)
    return out


def _check_numbers(node: Any, path: list[str | int], problems: list[tuple[list[str | int], str]]) -> None:
    if isinstance(node, float) and not math.isfinite(node):
        problems.append((path, f"must be a finite number, got {node}"))
    elif isinstance(node, dict):
        for k, v in node.items():
            if not isinstance(k, str):
                problems.append((path + [str(k)], f"keys must be strings, got {k!r}"))
                continue
            _check_numbers(v, path + [k], problems)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_numbers(v, path + [i], problems)


def load_config_text(
    text: str, overrides: Iterable[str] = (), base_dir: Path | None = None, source: str = "<config>"
) -> Experiment:
    """Parse, override and validate; raise ConfigError listing every problem."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem("", None, f"config is larger than {MAX_CONFIG_BYTES} bytes")])
    if "\x00" in text:
        raise ConfigError([Problem("", None, "config is binary, not YAML text")])
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([Problem("", line, f"YAML syntax error: {problem}")]) from None
    except RecursionError:
        raise ConfigError([Problem("", None, "YAML is nested too deeply")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem("", 1, f"the document must be a mapping of keys, got {type(data).__name__}")])
    data = apply_overrides(data, overrides)
    number_problems: list[tuple[list[str | int], str]] = []
    _check_numbers(data, [], number_problems)
    if number_problems:
        raise ConfigError([Problem(".".join(map(str, p)), _node_line(root, p), m) for p, m in number_problems])
    try:
        exp = Experiment.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = _loc_path(err["loc"])
            problems.append(Problem(".".join(map(str, path)), _node_line(root, path), _format_pydantic(err)))
        raise ConfigError(problems) from None
    cross = exp.cross_section_problems()
    cross.extend(_file_problems(exp, base_dir))
    if cross:
        raise ConfigError([Problem(p, _node_line(root, p.split(".")), m) for p, m in cross])
    return exp


def _file_problems(exp: Experiment, base_dir: Path | None) -> list[tuple[str, str]]:
    from workloads.files import resolve_data_file

    problems: list[tuple[str, str]] = []
    arrivals = exp.workload.arrivals
    if arrivals.kind == "trace" and arrivals.file:
        try:
            resolve_data_file(arrivals.file, base_dir)
        except FileNotFoundError as exc:
            problems.append(("workload.arrivals.file", str(exc)))
        else:
            from workloads.trace import load_trace

            try:
                load_trace(arrivals, base_dir)
            except (ValueError, OSError) as exc:
                problems.append(("workload.arrivals.file", f"cannot replay this trace: {exc}"))
    for i, cls in enumerate(exp.workload.classes):
        for key in ("input_tokens", "output_tokens"):
            spec = getattr(cls, key)
            if spec.dist == "empirical":
                try:
                    resolve_data_file(spec.file, base_dir)
                except FileNotFoundError as exc:
                    problems.append((f"workload.classes.{i}.{key}.file", str(exc)))
    return problems


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Experiment:
    """Read a config file ('-' for stdin) and validate it."""
    import sys

    if str(path) == "-":
        text = sys.stdin.read()
        base_dir = Path.cwd()
    else:
        p = Path(path)
        if not p.exists():
            raise ConfigError([Problem(str(path), None, "no such file")])
        if p.is_dir():
            raise ConfigError([Problem(str(path), None, "is a directory, not a config file")])
        raw = p.read_bytes()
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError([Problem(str(path), None, f"config is larger than {MAX_CONFIG_BYTES} bytes")])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError([Problem(str(path), None, "config is not UTF-8 text")]) from None
        base_dir = p.resolve().parent
    return load_config_text(text, overrides, base_dir=base_dir, source=str(path))


def resolved_yaml(exp: Experiment) -> str:
    """The fully resolved config (defaults filled in), as YAML that loads back to the same experiment."""
    data = exp.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
