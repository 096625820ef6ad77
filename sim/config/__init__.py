"""Experiment configuration: frozen pydantic models that forbid unknown keys.

`Experiment` is the root; `load_config` reads YAML with line numbers and `--set` overrides.
"""

from sim.config.experiment import Experiment
from sim.config.loader import ConfigError, load_config, load_config_text

__all__ = ["ConfigError", "Experiment", "load_config", "load_config_text"]
