"""Registries by discovery: every module of a package that defines `POLICY` is one entry, under its name.

The routing policies (backends/routing/registry.py) and the GPU pool's server routing policies
(backends/gpu/server_policy.py) are found this way, so adding a policy is adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


P = TypeVar("P", bound=Named)


def discover(package: ModuleType, what: str) -> dict[str, P]:
    """`POLICY` of every module of `package`, by its `name` (modules in name order); two entries with one
    name are refused (`what` names the kind in the message)."""
    found: dict[str, P] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        policy: P | None = getattr(module, "POLICY", None)
        if policy is None:
            continue
        if policy.name in found:
            raise RuntimeError(f"two {what} named {policy.name!r}")
        found[policy.name] = policy
    return found
