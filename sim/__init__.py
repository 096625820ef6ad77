"""capsim: a discrete-event capacity simulator for LLM serving.

The Python API (docs/python-api.md): `simulate`, `load_config`, `plan`, `breakeven`, `ConfigError`,
`Experiment`, `SimulationResult`. Names are imported on first use, so `import sim` stays light.

Layers, each importing only from those below it (`lint-imports`, docs/architecture.md): sim.app >
sim.report > sim.studies > sim.engine > backends > workloads > sim.config > sim.core. Nothing inside
the layers imports this package root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.core.version import __version__

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
