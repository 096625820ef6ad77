"""capsim: a discrete-event capacity simulator for LLM serving.

The Python API (docs/python-api.md): `simulate`, `load_config`, `plan`, `breakeven`, `ConfigError`,
`Experiment`, `SimulationResult`. Names are imported on first use, so `import sim` stays light.

`sim.plan` and `sim.breakeven` are the API's functions although modules of those names exist
(`sim/studies/plan.py`, `sim/studies/breakeven.py`): importing such a module would make it the package's attribute, so
the package keeps the function (the module stays importable as `from sim.plan import ...`; write
`importlib.import_module("sim.plan")` for the module object).
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Experiment",
    "SimulationResult",
    "__version__",
    "breakeven",
    "load_config",
    "plan",
    "simulate",
]

_LAZY = {
    "ConfigError": "sim.config",
    "Experiment": "sim.config",
    "SimulationResult": "sim.app.api",
    "breakeven": "sim.app.api",
    "load_config": "sim.app.api",
    "plan": "sim.app.api",
    "simulate": "sim.app.api",
}

if TYPE_CHECKING:
    from sim.app.api import SimulationResult, breakeven, load_config, plan, simulate
    from sim.config import Experiment
    from sim.config.errors import ConfigError


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return  # the API's function stays; the submodule is in sys.modules ("from sim.plan import ...")
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
