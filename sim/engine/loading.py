"""Load an experiment from YAML: safe parsing, `--set` overrides, errors located by dotted path and line.

`yaml.safe_load` loses line numbers, so the document is also composed into a node tree, and each
pydantic error path is walked down that tree to the line of the key (or of its nearest parent).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.config.backends import UNION_TAGS
from sim.config.errors import ConfigError, Problem, format_pydantic
from sim.config.experiment import Experiment
from sim.engine.variants import apply_overrides, run_problems
from sim.engine.yaml12 import Yaml12Loader, dump

MAX_CONFIG_BYTES = 4 * 1024 * 1024


_OTHER_BREAKS = re.compile("[\x85\u2028\u2029]|\r(?!\n)")


@functools.lru_cache(maxsize=4)
def _has_other_breaks(text: str) -> bool:
    return _OTHER_BREAKS.search(text) is not None


def mark_line(mark: yaml.Mark | None) -> int | None:
    """1-based line of a PyYAML mark, counting '\n' only (as editors, `grep -n` and our own messages do).

    PyYAML also counts U+0085, U+2028, U+2029 and a lone '\r' as line breaks; where the text holds one,
    the line is counted again from the mark's position in the text.
    """
    if mark is None:
        return None
    buffer, pointer = getattr(mark, "buffer", None), getattr(mark, "pointer", None)
    if isinstance(buffer, str) and isinstance(pointer, int) and _has_other_breaks(buffer):
        return buffer.count("\n", 0, pointer) + 1
    return int(mark.line) + 1


def _key_text(key_node: yaml.Node) -> str:
    """The key as the constructed document spells it (`~` is None, `true` is True, `0x10` is 16)."""
    value = str(key_node.value)
    tag = str(key_node.tag)
    if not isinstance(key_node, yaml.ScalarNode) or not tag.startswith("tag:yaml.org,2002:"):
        return value
    kind = tag.rsplit(":", 1)[1]
    if kind == "null":
        return "None"
    if kind == "bool":
        return str(value.lower() == "true")
    if kind in ("int", "float"):
        try:
            return str(yaml.load(value, Loader=Yaml12Loader))  # noqa: S506 - the YAML 1.2 SafeLoader
        except (yaml.YAMLError, ValueError):
            return value
    return value


def _node_line(root: yaml.Node | None, path: Sequence[str | int]) -> int | None:
    node = root
    line = mark_line(node.start_mark) if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if _key_text(key_node) == str(part):
                    line = mark_line(key_node.start_mark)
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and str(part).isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = mark_line(node.start_mark)
        else:
            return line
    return line


def _loc_path(loc: Sequence[Any]) -> list[str | int]:
    # drop discriminator tags that pydantic inserts into union locations
    dist_tags = {"constant", "exponential", "geometric", "lognormal", "gamma", "uniform", "pareto", "empirical"}
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and part in UNION_TAGS:  # gpu / model: a name or a mapping
            continue
        if isinstance(part, str) and part in dist_tags and i > 0 and i < len(loc) - 0:
            prev = loc[i - 1]
            if isinstance(prev, str) and prev.endswith(("_tokens", "_s")):
                continue
        out.append(part)
    return out


_MESSAGE_KEYS = {"class shares": "classes", "class names": "classes"}


def _refine_path(data: Any, path: list[str | int], err: Mapping[str, Any]) -> list[str | int]:
    """A check of a whole model ("warmup_h must be < horizon_h") is located at the key it names."""
    if err.get("type") != "value_error":
        return path
    node = data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return path
    if not isinstance(node, dict):
        return path
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    for prefix, key in _MESSAGE_KEYS.items():
        if msg.startswith(prefix) and key in node:
            return [*path, key]
    first = msg.split(" ", 1)[0].strip("'\"`")
    return [*path, first] if first in node else path


def _unknown_key_message(path: list[str | int]) -> str:
    from sim.config.suggest import suggest

    close = suggest(path)
    return f"unknown key (not allowed here); did you mean {close!r}?" if close else "unknown key (not allowed here)"


def _problem(root: yaml.Node | None, path: Sequence[str | int], message: str, overrides: Sequence[str]) -> Problem:
    """A problem located at its key's line; a key that only an override wrote, with nothing of its path
    in the file, is named by the override instead (`--set foo.bar=1: foo: unknown key`)."""
    dotted = [str(p) for p in path]
    for item in overrides:
        key = [p.strip() for p in item.partition("=")[0].split(".")]
        written = dotted[: len(key)] == key or key[: len(dotted)] == dotted
        if written and dotted and not _in_tree(root, dotted[:1]):
            return Problem(f"--set {item}: {'.'.join(dotted)}", None, message)
    return Problem(".".join(dotted), _node_line(root, path), message)


def _in_tree(root: yaml.Node | None, path: Sequence[str]) -> bool:
    node = root
    for part in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if str(k.value) == part), None)
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
        else:
            return False
        if node is None:
            return False
    return True


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


MAX_EXPANDED_VALUES = 100_000  # values after YAML aliases are expanded (a "billion laughs" document is refused)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Number of nodes the document expands to (aliases counted at every use), stopping once above limit."""
    memo: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if depth > 200:
            raise ConfigError([Problem("", mark_line(node.start_mark), "YAML is nested too deeply")])
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k, depth + 1) + size(v, depth + 1)
                if total > limit:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for v in node.value:
                total += size(v, depth + 1)
                if total > limit:
                    break
        memo[key] = total
        return total

    return size(root, 0)


def _duplicate_keys(node: yaml.Node, path: list[str], out: list[Problem], seen: set[int]) -> None:
    """PyYAML keeps the last of repeated keys silently; a repeated key is almost always a mistake."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, yaml.Node] = {}
        for k, v in node.value:
            name = str(k.value) if isinstance(k, yaml.ScalarNode) else None
            if name is not None:
                if name in first and name != "<<":
                    first_line = mark_line(first[name].start_mark)
                    msg = f"duplicate key (first given on line {first_line})"
                    out.append(Problem(".".join([*path, name]), mark_line(k.start_mark), msg))
                first.setdefault(name, k)
            _duplicate_keys(v, [*path, name if name is not None else "?"], out, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _duplicate_keys(v, [*path, str(i)], out, seen)


def _deepest_line(text: str, limit: int = 100) -> int:
    """The line where flow brackets first nest `limit` deep, else the most indented line."""
    depth, line = 0, 1
    for ch in text:
        if ch == "\n":
            line += 1
        elif ch in "[{":
            depth += 1
            if depth >= limit:
                return line
        elif ch in "]}":
            depth -= 1
    lines = text.splitlines() or [""]
    indents = [len(x) - len(x.lstrip(" ")) for x in lines]
    return indents.index(max(indents)) + 1


def _path_at(root: yaml.Node, mark: yaml.Mark) -> str:
    """Dotted path of the value whose node starts at `mark` ("" when none does)."""
    todo: list[tuple[yaml.Node, list[str]]] = [(root, [])]
    seen: set[int] = set()
    while todo:
        node, path = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.start_mark.index == mark.index and path:
            return ".".join(path)
        if isinstance(node, yaml.MappingNode):
            todo.extend((v, [*path, _key_text(k)]) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend((v, [*path, str(i)]) for i, v in enumerate(node.value))
    return ""


def parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """Parse YAML safely (no Python object construction), once, keeping the node tree for line numbers.

    Raises ConfigError for binary text, syntax errors, unsafe or unknown tags, documents that expand to
    absurd sizes (aliases), nesting too deep, integers too long to convert, and repeated keys.
    """
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ConfigError([Problem("", line, "config is binary (holds NUL bytes), not YAML text")])
    loader: Yaml12Loader | None = None
    root = None
    try:
        loader = Yaml12Loader(text)
        root = loader.get_single_node()
        if root is None:
            return None, None
        if _expanded_size(root, MAX_EXPANDED_VALUES) > MAX_EXPANDED_VALUES:
            raise ConfigError(
                [Problem("", 1, f"the document expands to more than {MAX_EXPANDED_VALUES} values (YAML aliases)")]
            )
        dupes: list[Problem] = []
        _duplicate_keys(root, [], dupes, set())
        if dupes:
            raise ConfigError(dupes)
        data = loader.construct_document(root)
    except yaml.reader.ReaderError as exc:  # a control character: no mark, only a position
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise ConfigError(
            [Problem("", line, f"YAML cannot hold character {exc.character:#06x} here ({exc.reason})")]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        yaml_line = mark_line(mark)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "constructor for the tag" in str(problem):
            problem = f"{problem} (tags that build objects are not allowed; write plain values)"
            where = _path_at(root, mark) if root is not None and mark is not None else ""
            raise ConfigError([Problem(where, yaml_line, f"YAML tag not allowed: {problem}")]) from None
        if "YAML 1.2" in str(problem):
            where = _path_at(root, mark) if root is not None and mark is not None else ""
            raise ConfigError([Problem(where, yaml_line, str(problem))]) from None
        raise ConfigError([Problem("", yaml_line, f"YAML syntax error: {problem}")]) from None
    except RecursionError:
        raise ConfigError([Problem("", _deepest_line(text), "YAML is nested too deeply")]) from None
    except ValueError as exc:  # e.g. an integer literal longer than Python converts (4300 digits)
        m = re.search(r"\d{4000,}", text)
        long_line = text.count("\n", 0, m.start()) + 1 if m else None
        raise ConfigError([Problem("", long_line, f"YAML value cannot be read: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return root, data


def load_config_text(
    text: str, overrides: Iterable[str] = (), base_dir: Path | None = None, source: str = "<config>"
) -> Experiment:
    """Parse, override and validate; raise ConfigError listing every problem.

    An empty document (nothing but whitespace or comments) is an error: it is far more often a truncated
    file, a wrong path or an empty pipe than a wish for every default; write `{}` for an all-defaults run.
    """
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem("", None, f"config is larger than {MAX_CONFIG_BYTES} bytes")])
    root, data = parse_yaml(text)
    if data is None:
        raise ConfigError(
            [Problem("", 1, "the config is empty; write {} to run with every default (see docs/config.md)")]
        )
    if not isinstance(data, dict):
        raise ConfigError([Problem("", 1, f"the document must be a mapping of keys, got {type(data).__name__}")])
    overrides = list(overrides)
    data = apply_overrides(data, overrides)
    number_problems: list[tuple[list[str | int], str]] = []
    _check_numbers(data, [], number_problems)
    problems = [_problem(root, p, m, overrides) for p, m in number_problems]
    try:
        exp = Experiment.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        seen = {p.path for p in problems}
        for err in exc.errors():
            path = _refine_path(data, _loc_path(err["loc"]), err)
            dotted = ".".join(map(str, path))
            if dotted in seen:  # already said (a non-finite number)
                continue
            seen.add(dotted)
            message = _unknown_key_message(path) if err.get("type") == "extra_forbidden" else format_pydantic(err)
            problems.append(_problem(root, path, message, overrides))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    cross = run_problems(exp, base_dir)
    if cross:
        raise ConfigError([_problem(root, p.split("."), m, overrides) for p, m in cross])
    return exp


def decode_config_bytes(raw: bytes, where: str) -> str:
    """UTF-8 text of a config file (a leading byte-order mark is dropped), or ConfigError naming the line."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem(where, None, f"config is larger than {MAX_CONFIG_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        what = "binary" if b"\x00" in raw else "not UTF-8 text"
        raise ConfigError([Problem(where, line, f"config is {what} (byte {exc.start} is not UTF-8)")]) from None
    return text[1:] if text.startswith("\ufeff") else text


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Experiment:
    """Read a config file ('-' for stdin) and validate it."""
    import sys

    if str(path) == "-":
        stream = getattr(sys.stdin, "buffer", None)
        raw = stream.read(MAX_CONFIG_BYTES + 1) if stream is not None else sys.stdin.read().encode("utf-8")
        text = decode_config_bytes(raw, "<stdin>")
        base_dir = Path.cwd()
    else:
        p = Path(path)
        try:
            if not p.exists():
                raise ConfigError([Problem(str(path), None, "no such file")])
            if p.is_dir():
                raise ConfigError([Problem(str(path), None, "is a directory, not a config file")])
            with open(p, "rb") as fh:
                raw = fh.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise ConfigError([Problem(str(path), None, f"cannot read: {exc.strerror or exc}")]) from None
        text = decode_config_bytes(raw, str(path))
        base_dir = p.resolve().parent
    return load_config_text(text, overrides, base_dir=base_dir, source=str(path))


def resolved_yaml(exp: Experiment) -> str:
    """The fully resolved config (defaults filled in), as YAML that loads back to the same experiment."""
    # with named pools the one-pool shorthand is left out (it stays at its defaults, and reads as a pool)
    exclude = {"backends": {"gpu_pool"}} if exp.backends.gpu_pools else None
    data = exp.model_dump(mode="json", exclude=exclude)
    return dump(data)
