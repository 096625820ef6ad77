"""Shipped profiles (with attribution), empirical token distributions from trace columns, example configs."""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import numpy as np
import pytest

from sim.config.distributions import EmpiricalSpec
from sim.core.rng import stream
from sim.engine.loading import load_config
from workloads.files import PROFILES_DIR
from workloads.named_profiles import PROFILES, hour_of_week_multipliers, profile_names
from workloads.token_counts import make_token_distribution
from workloads.week_plot import WEEK_H, band_of, minute_counts

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {
    "azure_llm_2023_code.csv": "CC-BY-4.0",
    "azure_llm_2023_conv.csv": "CC-BY-4.0",
    "azure_llm_2024_code_1week_rpm_digitized.csv": "CC-BY-4.0",
    "azure_llm_2024_code_1week_hourly_digitized.csv": "CC-BY-4.0",
    "mooncake_fast25_conversation_trace.jsonl": "Apache-2.0",
}


def test_profiles_are_shipped_with_their_source_and_licence() -> None:
    readme = (PROFILES_DIR / "README.md").read_text()
    for name, licence in SHIPPED.items():
        assert (PROFILES_DIR / name).is_file()
        line = next(ln for ln in readme.splitlines() if f"`{name}`" in ln)
        assert licence in line
    assert "Azure/AzurePublicDataset" in readme and "kvcache-ai/Mooncake" in readme
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["workloads"]
    assert {"profiles/*.csv", "profiles/*.jsonl", "profiles/*.md"} <= set(data)
    for src in PROFILES.values():
        assert src.file in SHIPPED


def test_named_profile_is_the_real_week_rotated_to_monday() -> None:
    assert profile_names() == ("azure-code-week-2024",)
    for alias in ("azure-code-week", "azure_code_week_2024", "Azure_Code_Week"):
        np.testing.assert_array_equal(hour_of_week_multipliers(alias), hour_of_week_multipliers("azure-code-week-2024"))
    with (PROFILES_DIR / "azure_llm_2024_code_1week_hourly_digitized.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    real = np.array([float(r["requests_per_s"]) for r in rows])
    m = hour_of_week_multipliers("azure-code-week-2024")
    # the file starts on Friday 2024-05-10 00:00 UTC: Friday is hour 96 of a Monday-based week
    assert rows[0]["hour_start_utc"] == "2024-05-10 00:00"
    np.testing.assert_allclose(m, np.roll(real, 96) / real.mean(), rtol=1e-12)
    weekday = m[: 5 * 24].reshape(5, 24).sum(axis=1).mean()
    weekend = m[5 * 24 :].reshape(2, 24).sum(axis=1).mean()
    assert weekend / weekday == pytest.approx(1 / 3, abs=0.05)  # "weekends carry about a third"


@pytest.mark.parametrize(
    ("file", "column"),
    [
        ("azure_llm_2023_conv.csv", "ContextTokens"),
        ("azure_llm_2023_code.csv", "GeneratedTokens"),
        ("mooncake_fast25_conversation_trace.jsonl", "input_length"),
    ],
)
def test_empirical_token_lengths_from_a_trace_column(file: str, column: str) -> None:
    path = PROFILES_DIR / file
    if file.endswith(".jsonl"):
        import json

        values = np.array([json.loads(ln)[column] for ln in path.read_text().splitlines() if ln.strip()], float)
    else:
        with path.open() as fh:
            values = np.array([float(r[column]) for r in csv.DictReader(fh)])
    dist = make_token_distribution(EmpiricalSpec(dist="empirical", file=file, column=column))
    assert dist.mean == pytest.approx(np.maximum(values, 1).mean(), rel=1e-12)
    x = dist.sample(stream(1, 0, "input_tokens"), 200_000)
    assert set(np.unique(x)) <= set(np.maximum(values, 1).astype(int))
    assert abs(x.mean() - dist.mean) < 4 * np.sqrt(dist.variance / x.size)


@pytest.mark.parametrize("name", ["azure-code-week.yaml", "azure-conv-trace.yaml", "enterprise-working-day.yaml"])
def test_example_experiments_validate(name: str) -> None:
    exp = load_config(ROOT / "experiments" / name)
    assert exp.workload.arrivals.kind in ("profile", "trace", "diurnal")


def test_week_plot_helpers_on_a_short_run() -> None:
    from workloads.week_plot import _experiment

    exp = _experiment(1.0, 3, None).model_copy(update={"horizon_h": 24.0})
    counts = minute_counts(exp)
    assert counts.size == 1440 and counts.sum() == pytest.approx(
        86400 * np.mean(hour_of_week_multipliers("azure-code-week-2024")[96:120]), rel=0.02
    )
    import pandas as pd

    band = pd.DataFrame({"t0_s": [0.0, 600.0], "t1_s": [430.0, 1030.0]})
    lo, hi = band_of(counts, band)
    assert np.all(lo <= hi) and WEEK_H == 168
