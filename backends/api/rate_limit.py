"""RPM and TPM token buckets of an API provider, and the retry backoff after a 429.

The buckets are consulted call by call in time order (the API dispatcher guarantees the order), so they
are plain scalar state: a level per bucket and the time it was last brought up to date.
"""

from __future__ import annotations

import numpy as np

from sim.config.api import RateLimitSpec

ACCEPTED, LIMITED, TOO_LARGE = 0, 1, 2


class TokenBuckets:
    """An RPM bucket (one token per call) and a TPM bucket (input + output tokens per call), both full at t=0."""

    def __init__(self, spec: RateLimitSpec):
        self.spec = spec
        self.rpm_rate = spec.rpm / 60.0 if spec.rpm is not None else None
        self.rpm_cap = max(1.0, spec.rpm * spec.rpm_burst_s / 60.0) if spec.rpm is not None else 0.0
        self.tpm_rate = spec.tpm / 60.0 if spec.tpm is not None else None
        self.tpm_cap = spec.tpm * spec.tpm_burst_s / 60.0 if spec.tpm is not None else 0.0
        self.rpm_level = self.rpm_cap
        self.tpm_level = self.tpm_cap
        self.t = 0.0

    def acquire(self, t: float, tokens: int) -> int:
        """Try a call at time t (never earlier than the previous call): ACCEPTED, LIMITED (429) or TOO_LARGE."""
        dt = t - self.t
        assert dt >= -1e-9, f"rate-limited call at {t} after one at {self.t}: calls out of time order"
        if dt > 0.0:
            self.t = t
            if self.rpm_rate is not None:
                self.rpm_level = min(self.rpm_cap, self.rpm_level + dt * self.rpm_rate)
            if self.tpm_rate is not None:
                self.tpm_level = min(self.tpm_cap, self.tpm_level + dt * self.tpm_rate)
        if self.tpm_rate is not None and tokens > self.tpm_cap:
            return TOO_LARGE
        if self.rpm_rate is not None and self.rpm_level < 1.0:
            return LIMITED
        if self.tpm_rate is not None and self.tpm_level < tokens:
            return LIMITED
        if self.rpm_rate is not None:
            self.rpm_level -= 1.0
        if self.tpm_rate is not None:
            self.tpm_level -= tokens
        return ACCEPTED


def make_buckets(spec: RateLimitSpec) -> TokenBuckets | None:
    return TokenBuckets(spec) if spec.rpm is not None or spec.tpm is not None else None


def backoff_s(spec: RateLimitSpec, retry: int, rng: np.random.Generator) -> float:
    """Wait before retry number `retry` (1, 2, ...): exponential, mean-preserving jitter, capped."""
    base = min(spec.backoff_s * 2.0 ** (retry - 1), spec.max_backoff_s)
    if spec.jitter > 0.0:
        base *= 1.0 + spec.jitter * (2.0 * float(rng.random()) - 1.0)
    return base
