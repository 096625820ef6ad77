"""A PyYAML SafeLoader that reads plain scalars as YAML 1.2 (core schema) does, not as YAML 1.1.

YAML 1.1, which PyYAML implements, turns `yes`/`no`/`on`/`off` into booleans (`servers: yes` is 1),
`1:30` into the sexagesimal 90, `012` into the octal 10, `1_000` into 1000 and `2024-01-01` into a date,
and reads `1e3` as a string. Here, as in YAML 1.2:

- booleans are only `true`/`false` (`True`, `TRUE`, ...); `yes`, `no`, `on`, `off` stay strings;
- null is `~`, `null` (`Null`, `NULL`) or nothing;
- integers are decimal (`012` is 12), `0o17` or `0x1F`; no `_`, no sexagesimal (`1:30` stays a string);
- floats are `1.5`, `.5`, `1e3`, `1.0e+3`, `.inf`, `-.inf`, `.nan`;
- everything else is a string (dates included).

Tags that make something other than plain data are refused: `!!binary` (bytes), `!!timestamp`, `!!set`,
`!!omap`, `!!pairs`, and every `!!python/...` or custom tag. An explicit `!!int` or `!!float` follows the
same 1.2 rules. `<<` merge keys keep working.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_MERGE = re.compile(r"^(?:<<)$")

_TAG = "tag:yaml.org,2002:"


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema resolution of plain scalars (see the module docstring)."""


class Yaml12Dumper(yaml.SafeDumper):
    """SafeDumper that quotes a string whenever YAML 1.1 or 1.2 would read it as something else (`yes`,
    `1e3`), so what it writes loads back the same with this module's loader and with `yaml.safe_load`."""


_RESOLVERS = (
    ("bool", _BOOL, list("tTfF")),
    ("null", _NULL, ["~", "n", "N", ""]),
    ("int", _INT, list("-+0123456789")),
    ("float", _FLOAT, list("-+.0123456789")),
    ("merge", _MERGE, ["<"]),
)
Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in _RESOLVERS:
    Yaml12Loader.add_implicit_resolver(_TAG + _tag, _regexp, _first)
    Yaml12Dumper.add_implicit_resolver(_TAG + _tag, _regexp, _first)


def dump(data: Any, **options: Any) -> str:
    """YAML text of plain data, readable back the same by both loaders (see Yaml12Dumper)."""
    kwargs: dict[str, Any] = {"sort_keys": False, "default_flow_style": None, "width": 100, **options}
    return str(yaml.dump(data, Dumper=Yaml12Dumper, **kwargs))


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if not _INT.match(text):
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a YAML 1.2 integer (decimal, 0o.. or 0x..)", node.start_mark
        )
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if _INT.match(text) and not text.startswith(("0o", "0x")):
        return float(int(text, 10))
    if not _FLOAT.match(text):
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not a YAML 1.2 float", node.start_mark)
    low = text.lower()
    if low.endswith(".inf"):
        return float("-inf") if low.startswith("-") else float("inf")
    if low == ".nan":
        return float("nan")
    return float(text)


Yaml12Loader.yaml_constructors = dict(yaml.SafeLoader.yaml_constructors)
for _name in ("binary", "timestamp", "set", "omap", "pairs"):
    Yaml12Loader.yaml_constructors.pop(_TAG + _name, None)
Yaml12Loader.add_constructor(_TAG + "int", _construct_int)
Yaml12Loader.add_constructor(_TAG + "float", _construct_float)


def load_scalar(text: str) -> Any:
    """One `--set` / `--sweep` value read as a YAML 1.2 document (a plain string when it is not YAML)."""
    loader = Yaml12Loader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError:
        return text
    finally:
        loader.dispose()
