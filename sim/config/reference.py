"""Generate the config reference (docs/config-reference.md) from the models themselves, so it cannot drift.

python -m sim.config.reference > docs/config-reference.md
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sim.config.experiment import Experiment


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(tp)[0])
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list[{_type_name(typing.get_args(tp)[0])}]"
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"dict[{_type_name(k)}, {_type_name(v)}]"
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp.__name__
    return getattr(tp, "__name__", str(tp))


def _constraints(info: FieldInfo) -> str:
    parts = []
    for m in info.metadata:
        for attr, op in (
            ("ge", ">="),
            ("gt", ">"),
            ("le", "<="),
            ("lt", "<"),
            ("min_length", "len >="),
            ("max_length", "len <="),
        ):
            v = getattr(m, attr, None)
            if v is not None:
                parts.append(f"{op} {v}")
    return ", ".join(parts)


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        try:
            v = info.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
    else:
        v = info.default
    if isinstance(v, BaseModel):
        d = v.model_dump(mode="json")
        return "`" + str(d) + "`" if len(str(d)) < 80 else "(see section)"
    if isinstance(v, list) and v and isinstance(v[0], BaseModel):
        return "(see section)"
    return f"`{v!r}`" if v is not None else "`null`"


def _models(model: type[BaseModel], path: str, out: list[tuple[str, type[BaseModel]]]) -> None:
    out.append((path, model))
    for name, info in model.model_fields.items():
        for sub in _nested(info.annotation):
            _models(sub, f"{path}.{name}" if path else name, out)


def _nested(tp: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    for a in typing.get_args(tp):
        found.extend(_nested(a))
    return found


def render() -> str:
    lines = [
        "# Config reference",
        "",
        "Generated from the config models by `python -m sim.config.reference`; every model forbids unknown",
        "keys. Times are in seconds unless the key says `_h`/`_ms`; money in USD.",
        "",
    ]
    seen: set[tuple[str, str]] = set()
    collected: list[tuple[str, type[BaseModel]]] = []
    _models(Experiment, "", collected)
    for path, model in collected:
        if (path, model.__name__) in seen:
            continue
        seen.add((path, model.__name__))
        lines.append(f"## `{path or '(top level)'}` ({model.__name__})")
        doc = (model.__doc__ or "").strip().splitlines()
        if doc and not doc[0].startswith("Usage docs"):
            lines += ["", doc[0]]
        lines += ["", "| key | type | default | constraints |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            lines.append(f"| `{name}` | {_type_name(info.annotation)} | {_default(info)} | {_constraints(info)} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())
