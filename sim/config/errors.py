"""A user's config problems: each with its dotted path, line and message (pure data, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        # one line per problem, whatever a key or a message holds
        where = " ".join((self.path or "<document>").split())
        message = " ".join(self.message.split())
        return f"{where} (line {self.line}): {message}" if self.line else f"{where}: {message}"


class ConfigError(Exception):
    """A user's config is wrong; carries every problem found."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_pydantic(err: Mapping[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key (not allowed here)"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        ctx = err.get("ctx", {})
        bound = next(iter(ctx.values())) if ctx else "?"
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        return f"must be {op} {bound}, got {_short(err.get('input'))}"
    if kind == "finite_number":
        return f"must be a finite number, got {_short(err.get('input'))}"
    if kind == "missing":
        return "required key is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"unknown {str(ctx.get('discriminator', '')).strip(chr(39))} {ctx.get('tag')!r}; expected one of " + str(
            ctx.get("expected_tags", "")
        ).replace("'", "")
    if kind == "union_tag_not_found":
        return "needs a `dist:` key naming the distribution (constant, exponential, lognormal, ...)"
    if kind in ("literal_error", "enum"):
        return f"{msg}, got {_short(err.get('input'))}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{msg}, got {_short(err.get('input'))}{_type_hint(err.get('input'))}"
    return msg


def _type_hint(value: Any) -> str:
    """Why a value of the wrong type is not converted (configs are YAML 1.2 with strict types)."""
    if isinstance(value, bool):
        return " (a boolean is not a number: write the number)"
    if isinstance(value, str) and value.strip().lower() in _YAML11_BOOLS:
        return " (capsim reads YAML 1.2: only true/false are booleans; yes/no/on/off are text)"
    if isinstance(value, str) and _SEXAGESIMAL.match(value.strip()):
        return " (capsim reads YAML 1.2, which has no sexagesimal numbers: 1:30 is text, not 90; write 1.5)"
    if isinstance(value, str):
        return " (text is not converted to a number: write the number unquoted)"
    if isinstance(value, float) and value.is_integer():
        return " (write a whole number without a decimal point)"
    if isinstance(value, float):
        return " (a whole number is needed; capsim does not round)"
    if isinstance(value, bytes):
        return " (binary data is not allowed)"
    return ""


def _short(v: Any, limit: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."
