"""`backends.api.preset`: a named model's list prices, overridable, refused by name when unknown, named
in the report; the bill through the simulator is exact cost arithmetic at the preset's prices."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sim.config import Experiment
from sim.config.api import ApiSpec
from sim.config.api_presets import DEFAULT_PRESET, PRESETS, get_preset, preset_names
from sim.engine.loading import load_config_text
from sim.engine.replication import simulate
from sim.engine.variants import derive
from sim.report.data import ReportData
from sim.report.traffic_prices import traffic_price_items
from tests.test_config_errors import assert_user_error, capsim

ROOT = Path(__file__).resolve().parents[1]

API_ONLY = """
name: preset-bill
seed: 3
horizon_h: 1
workload:
  arrivals: {kind: constant, mean_rps: 5}
  classes:
    - {name: c, share: 1.0, input_tokens: {dist: constant, value: 700}, output_tokens: {dist: constant, value: 300}}
routing: {policy: api_only}
cache:
  prompt: {cached_input_fraction: 0.25}
backends:
  api: {preset: claude-sonnet-4.6}
"""


def test_default_prices_are_gpt_4o_list_prices() -> None:
    spec, p = ApiSpec(), get_preset(DEFAULT_PRESET)
    assert DEFAULT_PRESET == "gpt-4o"
    assert (spec.price_input_per_mtok_usd, spec.price_cached_input_per_mtok_usd, spec.price_output_per_mtok_usd) == (
        p.input_per_mtok_usd,
        p.cached_input_per_mtok_usd,
        p.output_per_mtok_usd,
    )
    assert spec.batch_discount == p.batch_discount


def test_seed_documents_prices_per_1m() -> None:
    # the seed's list: GPT-4o $2.50/$10, GPT-5 $1.25/$10, Gemini 2.5 Pro $1.25/$10, Sonnet 4.6 $3/$15,
    # Opus 4.6 $5/$25; text-embedding-3-small $0.02 input
    seed = {
        "gpt-4o": (2.50, 10.0),
        "gpt-5": (1.25, 10.0),
        "gemini-2.5-pro": (1.25, 10.0),
        "claude-sonnet-4.6": (3.0, 15.0),
        "claude-opus-4.6": (5.0, 25.0),
        "text-embedding-3-small": (0.02, 0.0),
    }
    for name, (inp, out) in seed.items():
        assert (PRESETS[name].input_per_mtok_usd, PRESETS[name].output_per_mtok_usd) == (inp, out), name


def test_every_preset_has_a_source_and_a_date_and_sane_prices() -> None:
    for name, p in PRESETS.items():
        assert p.source.strip() and len(p.as_of) == 10 and p.as_of[4] == "-", name
        assert 0 <= p.cached_input_per_mtok_usd <= p.input_per_mtok_usd, name
        assert 0 < p.batch_discount <= 1, name


def _fact_prices(model_cell: str, value_cell: str) -> dict[str, list[float]]:
    names = [m.strip() for m in model_cell.split("/")]
    groups = [[float(x) for x in g.strip().split("/")] for g in value_cell.split(";")]
    return dict(zip(names, groups, strict=True))


def test_presets_match_the_copied_calibration_rows() -> None:
    rows = list(csv.DictReader((ROOT / "benchmarks" / "data" / "calibration_facts_api.csv").open(encoding="utf-8")))
    openai = next(r for r in rows if r["hardware"] == "OpenAI API")
    for name, (inp, cached, out) in _fact_prices(openai["model"], openai["value"]).items():
        p = PRESETS[name]
        assert (p.input_per_mtok_usd, p.cached_input_per_mtok_usd, p.output_per_mtok_usd) == (inp, cached, out)
    anthropic = next(r for r in rows if r["hardware"] == "Anthropic API")
    facts = _fact_prices(anthropic["model"], anthropic["value"])  # input / cache write / cache hit / output
    for fact, preset in [
        ("Claude Sonnet 4.x", "claude-sonnet-4.6"),
        ("Haiku 4.5", "claude-haiku-4.5"),
        ("Opus 4.5-4.6", "claude-opus-4.6"),
    ]:
        inp, _write, hit, out = facts[fact]
        p = PRESETS[preset]
        assert (p.input_per_mtok_usd, p.cached_input_per_mtok_usd, p.output_per_mtok_usd) == (inp, hit, out)
    assert "batch API 50% off" in anthropic["notes"]
    assert all(PRESETS[n].batch_discount == 0.5 for n in ("claude-sonnet-4.6", "claude-haiku-4.5", "claude-opus-4.6"))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_fills_every_price(name: str) -> None:
    spec = ApiSpec(preset=name.upper())  # names are case-insensitive
    p = PRESETS[name]
    assert spec.preset == name
    assert spec.price_input_per_mtok_usd == p.input_per_mtok_usd
    assert spec.price_cached_input_per_mtok_usd == p.cached_input_per_mtok_usd
    assert spec.price_output_per_mtok_usd == p.output_per_mtok_usd
    assert spec.batch_discount == p.batch_discount


def test_explicit_prices_override_the_preset_and_named_providers_take_presets() -> None:
    exp = Experiment.model_validate(
        {
            "backends": {
                "api": {"preset": "gpt-5", "price_output_per_mtok_usd": 8.0, "batch_discount": 0.6},
                "apis": {"cheap": {"preset": "gemini-2.5-flash"}, "own": {"price_input_per_mtok_usd": 1.0}},
            }
        }
    )
    api = exp.backends.api
    assert (api.price_input_per_mtok_usd, api.price_cached_input_per_mtok_usd) == (1.25, 0.125)
    assert (api.price_output_per_mtok_usd, api.batch_discount) == (8.0, 0.6)
    cheap = exp.backends.apis["cheap"]
    assert (cheap.price_input_per_mtok_usd, cheap.price_output_per_mtok_usd) == (0.30, 2.50)
    assert exp.backends.apis["own"].price_output_per_mtok_usd == 10.0  # no preset: the defaults
    # the resolved config round-trips
    assert Experiment.model_validate(exp.model_dump(mode="json")) == exp


def test_a_variant_of_the_preset_takes_the_new_presets_prices_and_keeps_the_overrides() -> None:
    exp = Experiment.model_validate({"backends": {"api": {"preset": "gpt-5", "price_output_per_mtok_usd": 8.0}}})
    v = derive(exp, [("backends.api.preset", "claude-opus-4.6")]).backends.api
    assert (v.price_input_per_mtok_usd, v.price_cached_input_per_mtok_usd, v.price_output_per_mtok_usd) == (
        5.0,
        0.5,
        8.0,
    )


def test_the_bill_is_exact_arithmetic_at_the_preset_prices() -> None:
    r = simulate(load_config_text(API_ONLY), 0)
    m = r.metrics
    n = m["requests"]  # every call is billed when accepted, also those still streaming at the horizon
    assert n > 10_000 and m["failed"] == m["dropped"] == 0
    p = PRESETS["claude-sonnet-4.6"]
    per_request = (
        700 * (0.75 * p.input_per_mtok_usd + 0.25 * p.cached_input_per_mtok_usd) + 300 * p.output_per_mtok_usd
    ) / 1e6
    assert m["cost_api_usd"] == pytest.approx(n * per_request, rel=1e-12)
    # an explicit price beats the preset in the bill too
    m2 = simulate(load_config_text(API_ONLY, ["backends.api.price_output_per_mtok_usd=0"]), 0).metrics
    assert m2["cost_api_usd"] == pytest.approx(n * 700 * (0.75 * 3.0 + 0.25 * 0.30) / 1e6, rel=1e-12)


def test_unknown_preset_exits_2_with_the_list(tmp_path: Path) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text("backends:\n  apis:\n    other: {preset: gpt-9}\n")
    lines = assert_user_error(capsim("validate", str(cfg)), "backends.apis.other.preset (line 3)", "gpt-9")
    assert all(n in lines[0] for n in preset_names())
    ok = tmp_path / "ok.yaml"
    ok.write_text("routing: {policy: api_only}\n")
    assert_user_error(capsim("validate", str(ok), "--set", "backends.api.preset=gemini-9"), "backends.api.preset")


def test_the_report_names_the_preset_its_prices_and_source(tmp_path: Path) -> None:
    exp = load_config_text(API_ONLY)
    data = ReportData(folder=tmp_path, config=exp.model_dump(mode="json"))
    items = dict(traffic_price_items(data))
    line = items["API prices"]
    p = PRESETS["claude-sonnet-4.6"]
    assert "preset claude-sonnet-4.6" in line and p.source in line and p.as_of in line
    assert "$3 input" in line and "$0.3 cached input" in line and "$15 output" in line
