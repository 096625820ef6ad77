"""Experiment configuration: frozen pydantic models that forbid unknown keys (no I/O here).

`Experiment` is the root. Reading YAML with line numbers, `--set` overrides and the checks that need the
catalogs, data files or workloads are the engine's (`sim.engine.loading.load_config`, `sim.engine.checks`).
"""

from sim.config.errors import ConfigError
from sim.config.experiment import Experiment

__all__ = ["ConfigError", "Experiment"]
