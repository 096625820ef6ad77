"""The generated config reference must match the models (regenerate: python -m sim.config.reference)."""

from pathlib import Path

from sim.config.reference import render
from sim.core.metrics import METRICS

ROOT = Path(__file__).resolve().parents[1]


def test_config_reference_is_current() -> None:
    text = (ROOT / "docs" / "config-reference.md").read_text(encoding="utf-8")
    assert text.strip() == render().strip(), "docs/config-reference.md is stale: python -m sim.config.reference"


def test_every_metric_is_in_the_glossary() -> None:
    glossary = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    missing = [m for m in METRICS if f"`{m}`" not in glossary]
    assert not missing, f"metrics missing from docs/metrics.md: {missing}"
