"""Test-wide settings: hypothesis profiles (a "ci" profile is loaded when the CI variable is set)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Simulations vary in length with the drawn config, so no per-example deadline; examples stay small
# (tests/strategies.py bounds them) and 25 per property keeps every property test to a few seconds.
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
# CI: the same examples on every run (no flaky red builds from a newly drawn example), no example database.
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=25,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
