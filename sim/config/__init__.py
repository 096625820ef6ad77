"""Experiment configuration: frozen pydantic models that forbid unknown keys.

`Experiment` is the root; `load_config` reads YAML with line numbers and `--set` overrides.
"""

from sim.config.errors import ConfigError
from sim.config.experiment import Experiment
from sim.engine.loading import load_config, load_config_text

__all__ = ["ConfigError", "Experiment", "load_config", "load_config_text"]
