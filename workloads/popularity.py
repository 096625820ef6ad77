"""Zipf popularity over a finite catalogue of distinct prompts: P(rank k) ∝ k^-s, k = 1..N.

The head (the first 2^20 ranks, or all of them when N is smaller) is sampled exactly from its cumulative
table; the tail, when there is one, by inverting the continuous approximation of the tail mass
∫_{M+1/2}^{N+1/2} x^-s dx (Euler-Maclaurin midpoint rule), which is accurate to far below sampling error
for ranks above 2^20.
"""

from __future__ import annotations

import math

import numpy as np

HEAD = 1 << 20


def _tail_integral(a: float, b: float, s: float) -> float:
    if abs(s - 1.0) < 1e-12:
        return math.log(b / a)
    return (b ** (1 - s) - a ** (1 - s)) / (1 - s)


class ZipfPopularity:
    def __init__(self, n: int, s: float):
        if n < 1 or s <= 0:
            raise ValueError("Zipf needs n >= 1 and s > 0")
        self.n = int(n)
        self.s = float(s)
        m = min(self.n, HEAD)
        weights = np.arange(1, m + 1, dtype=np.float64) ** -self.s
        head_mass = float(weights.sum())
        tail_mass = _tail_integral(m + 0.5, self.n + 0.5, self.s) if self.n > m else 0.0
        self.norm = head_mass + tail_mass
        self._head_cdf = np.cumsum(weights) / self.norm
        self._head_p = head_mass / self.norm
        self._m = m

    def probabilities(self, k: np.ndarray) -> np.ndarray:
        """P(rank k) for ranks 1..N (the tail uses the same approximation as the sampler)."""
        k = np.asarray(k, dtype=np.float64)
        return k**-self.s / self.norm

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        u = rng.random(size)
        out = np.searchsorted(self._head_cdf, u, side="right").astype(np.int64) + 1
        if self.n > self._m:
            tail = u >= self._head_p
            if tail.any():
                # invert the tail: ∫_{M+1/2}^{x} t^-s dt = (u - p_head) * norm
                target = (u[tail] - self._head_p) * self.norm
                a = self._m + 0.5
                if abs(self.s - 1.0) < 1e-12:
                    x = a * np.exp(target)
                else:
                    x = (a ** (1 - self.s) + (1 - self.s) * target) ** (1 / (1 - self.s))
                out[tail] = np.clip(np.floor(x + 0.5), self._m + 1, self.n).astype(np.int64)
        return np.minimum(out, self.n)
