""" "Did you mean" for an unknown key: the full dotted path of the key the user most likely meant.

The config models are walked from `Experiment` along the path of the unknown key (mapping keys such as
`backends.apis.<name>` and list indices such as `workload.classes.0` are stepped over), so a suggestion is
always a real dotted path: `routing.max_queue` gets `routing.overflow.max_queue`, `backends.gpu_pool.sever`
gets `backends.gpu_pool.servers`, and `foo.bar` gets nothing (nothing is close).
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel

CUTOFF = 0.75
MAX_DEPTH = 8


def _models_in(annotation: Any) -> tuple[list[type[BaseModel]], bool]:
    """Models an annotation holds, and whether they sit under a mapping key or list index."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation], False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (dict, typing.Mapping) or origin is list or origin is tuple:
        inner: list[type[BaseModel]] = []
        for a in args[1:] if origin in (dict, typing.Mapping) else args:
            inner.extend(_models_in(a)[0])
        return inner, True
    found: list[type[BaseModel]] = []
    keyed = False
    for a in args:  # Annotated, Optional, Union (discriminated or not)
        models, k = _models_in(a)
        found.extend(models)
        keyed = keyed or k
    return found, keyed


def _children(cls: type[BaseModel], name: str) -> tuple[list[type[BaseModel]], bool]:
    field = cls.model_fields.get(name)
    if field is None:
        return [], False
    return _models_in(field.annotation)


def _leaf_paths(cls: type[BaseModel], prefix: str, depth: int = 0) -> Iterator[str]:
    for name in cls.model_fields:
        path = f"{prefix}.{name}" if prefix else name
        yield path
        if depth >= MAX_DEPTH:
            continue
        models, keyed = _children(cls, name)
        for m in models:
            yield from _leaf_paths(m, f"{path}.<name>" if keyed else path, depth + 1)


def suggest(path: Sequence[str | int]) -> str | None:
    """The dotted path most likely meant by the unknown key at `path` (None when nothing is close)."""
    from sim.config.experiment import Experiment

    parts = [str(p) for p in path]
    if not parts:
        return None
    parents: list[type[BaseModel]] = [Experiment]
    walked: list[str] = []
    skip = False
    for part in parts[:-1]:
        walked.append(part)
        if skip:  # a mapping key or a list index: the models stay the same
            skip = False
            continue
        nxt: list[type[BaseModel]] = []
        for cls in parents:
            models, keyed = _children(cls, part)
            nxt.extend(models)
            skip = skip or keyed
        if not nxt:
            return None
        parents = nxt
    key = parts[-1]
    prefix = ".".join(walked)
    siblings = sorted({n for cls in parents for n in cls.model_fields})
    close = difflib.get_close_matches(key, siblings, n=1, cutoff=CUTOFF)
    if close:
        return f"{prefix}.{close[0]}" if prefix else close[0]
    # the right name one level off: routing.max_queue -> routing.overflow.max_queue
    below = [p for cls in parents for p in _leaf_paths(cls, prefix)]
    here = [p for p in below if p.rsplit(".", 1)[-1] == key]
    if here:
        return min(here, key=len)
    everywhere = [p for p in _leaf_paths(Experiment, "") if p.rsplit(".", 1)[-1] == key]
    if everywhere:
        return min(everywhere, key=len)
    return None
