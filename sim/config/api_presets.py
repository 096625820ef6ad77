"""List prices of named LLM APIs, for `backends.api.preset` (and `backends.apis.<name>.preset`).

USD per 1M tokens: input, cached input (a prompt-cache hit), output; `batch_discount` is the price factor of
the provider's batch API. Prices are the providers' standard tier for prompts up to 200K tokens (Gemini 2.5
Pro doubles above that; long prompts are not modelled). Each entry names its source and the date the
figure was read or copied ("as of"; the calibration table's pricing rows carry no date of their own, so
theirs is the day they were copied here); prices change, so check the live page before signing anything.
GPT-5 and Gemini 2.5 Pro input / output agree with the seed documents' figures ($1.25 / $10 per 1M);
Gemini's cached-input prices are the page's context-caching rates as listed in June 2025.

Anthropic's "cached input" is the cache-hit (read) price; the cache-write surcharge (1.25x input for the
5-minute cache) is not modelled. Embedding models have no output tokens: give their classes output_tokens
{dist: constant, value: 0}.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiPreset:
    input_per_mtok_usd: float
    cached_input_per_mtok_usd: float
    output_per_mtok_usd: float
    batch_discount: float
    source: str
    as_of: str  # when the figure was read (YYYY-MM)

    @property
    def blended_per_mtok_usd(self) -> float:
        """Input and output tokens at equal counts, uncached: (input + output) / 2."""
        return (self.input_per_mtok_usd + self.output_per_mtok_usd) / 2.0


_FACTS = "capsim's calibration table (calibration_facts.csv, api_pricing rows)"
_OPENAI_FACTS = f"openai.com/api/pricing via {_FACTS}: docs.rs openai-models src/lib.rs and the CommitBrief wiki"
_ANTHROPIC = f"platform.claude.com/docs/en/docs/about-claude/pricing via {_FACTS} (batch API 50% off)"
_GPT5 = "crazyrouter.com/en/blog/gpt-5-pricing (updated 2026-04-27), quoting OpenAI's list price"
_EMBED = "chatgptpricing-akr.pages.dev/api-pricing, quoting developers.openai.com/api/docs/pricing"
_GOOGLE = "ai.google.dev/gemini-api/docs/pricing (paid tier, prompts <= 200K tokens), not re-read here"

PRESETS: dict[str, ApiPreset] = {
    "gpt-4o": ApiPreset(2.50, 1.25, 10.00, 0.5, _OPENAI_FACTS, "2026-12-01"),
    "gpt-4o-mini": ApiPreset(0.15, 0.075, 0.60, 0.5, _OPENAI_FACTS, "2026-12-01"),
    "gpt-5": ApiPreset(1.25, 0.125, 10.00, 0.5, _GPT5, "2026-04-27"),
    "text-embedding-3-small": ApiPreset(0.02, 0.02, 0.0, 0.5, _EMBED, "2026-12-01"),
    "text-embedding-3-large": ApiPreset(0.13, 0.13, 0.0, 0.5, _EMBED, "2026-12-01"),
    "claude-sonnet-4.6": ApiPreset(3.00, 0.30, 15.00, 0.5, _ANTHROPIC, "2026-12-01"),
    "claude-opus-4.6": ApiPreset(5.00, 0.50, 25.00, 0.5, _ANTHROPIC, "2026-12-01"),
    "claude-haiku-4.5": ApiPreset(1.00, 0.10, 5.00, 0.5, _ANTHROPIC, "2026-12-01"),
    "gemini-2.5-pro": ApiPreset(1.25, 0.31, 10.00, 0.5, _GOOGLE, "2025-06-17"),
    "gemini-2.5-flash": ApiPreset(0.30, 0.075, 2.50, 0.5, _GOOGLE, "2025-06-17"),
}

DEFAULT_PRESET = "gpt-4o"  # the defaults of backends.api are GPT-4o's list prices


def preset_names() -> list[str]:
    return sorted(PRESETS)


def normalise_preset(name: str) -> str:
    return name.strip().lower()


def get_preset(name: str) -> ApiPreset:
    key = normalise_preset(name)
    if key not in PRESETS:
        raise ValueError(f"unknown API preset {name!r}; presets: {', '.join(preset_names())}")
    return PRESETS[key]
