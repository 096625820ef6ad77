"""`backends.api` and `backends.apis.<name>`: a paid LLM API's prices, latency, limits and outages."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from sim.config.base import Frozen
from sim.config.distributions import DistSpec, LognormalSpec, UniformSpec

NonNegPrice = Annotated[float, Field(ge=0, le=1.0e6)]


class RateLimitSpec(Frozen):
    """Token buckets that answer 429: RPM (requests) and TPM (input + output tokens of a call).

    Each bucket refills continuously at rpm/60 (tpm/60) per second and holds `rpm_burst_s` (`tpm_burst_s`)
    seconds of refill, starting full. A rejected call is retried after backoff_s * 2^(k-1) * (1 + jitter *
    (2U - 1)) seconds (k = 1, 2, ...; U uniform from the `retries` stream; capped at max_backoff_s), at most
    max_retries times; then it fails or goes to `routing.fallback`. Batch-API calls are not rate-limited.
    """

    rpm: Annotated[float, Field(gt=0)] | None = None
    tpm: Annotated[float, Field(gt=0)] | None = None
    max_retries: Annotated[int, Field(ge=0, le=100)] = 5
    backoff_s: Annotated[float, Field(ge=0, le=3600)] = 1.0
    max_backoff_s: Annotated[float, Field(ge=0, le=86_400)] = 60.0
    jitter: Annotated[float, Field(ge=0, le=1)] = 0.5
    rpm_burst_s: Annotated[float, Field(gt=0, le=3600)] = 1.0  # providers enforce RPM per second
    tpm_burst_s: Annotated[float, Field(gt=0, le=3600)] = 60.0  # a whole minute: any call <= tpm tokens can pass


class OutageSpec(Frozen):
    mtbf_h: Annotated[float, Field(gt=0)] | None = None  # null: never down
    mttr_h: Annotated[float, Field(gt=0)] = 0.75


PRESET_PRICE_FIELDS = {
    "price_input_per_mtok_usd": "input_per_mtok_usd",
    "price_cached_input_per_mtok_usd": "cached_input_per_mtok_usd",
    "price_output_per_mtok_usd": "output_per_mtok_usd",
    "batch_discount": "batch_discount",
}


class ApiSpec(Frozen):
    """A paid API. The default prices are GPT-4o's list prices (backends.api_presets); `preset` takes a
    named model's prices from that catalog, and any price given beside it overrides the preset's."""

    preset: str | None = None
    price_input_per_mtok_usd: NonNegPrice = 2.50
    price_cached_input_per_mtok_usd: NonNegPrice = 1.25
    price_output_per_mtok_usd: NonNegPrice = 10.00
    batch_discount: Annotated[float, Field(ge=0, le=1)] = 0.5  # price factor of the batch API
    batch_delay_s: DistSpec = UniformSpec(dist="uniform", low=60.0, high=3600.0)
    ttft_s: DistSpec = LognormalSpec(dist="lognormal", median=0.45, sigma=0.35)
    output_tokens_per_s: Annotated[float, Field(gt=0, le=1.0e6)] = 110.0
    rate_limit: RateLimitSpec = RateLimitSpec()
    outages: OutageSpec = OutageSpec()

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from sim.config.api_presets import get_preset, normalise_preset

        get_preset(v)  # unknown: ValueError naming every preset
        return normalise_preset(v)

    @model_validator(mode="after")
    def _preset_prices(self) -> ApiSpec:
        """Prices not given explicitly come from the preset (model_fields_set keeps what was given)."""
        if self.preset is None:
            return self
        from sim.config.api_presets import get_preset

        p = get_preset(self.preset)
        for field, attr in PRESET_PRICE_FIELDS.items():
            if field not in self.model_fields_set:
                object.__setattr__(self, field, getattr(p, attr))
        return self
