"""The semantic cache: after an exact-cache miss, a lookup by prompt embedding that may answer with the
cached response of a similar prompt, and sometimes with a wrong one (a false hit: a quality cost).

Two models (sim.config.cache.SemanticCacheSpec): a direct hit probability with a false-hit share, or a
similarity threshold over two Beta similarity distributions (true paraphrase cached or not). Draws are
made for every request of a block, used or not, so a request's outcome is the same in every variant that
keeps the same threshold (common random numbers across thresholds, too: only the comparison changes).
"""

from __future__ import annotations

import numpy as np

from sim.config.cache import SemanticCacheSpec


def semantic_rates(spec: SemanticCacheSpec) -> tuple[float, float]:
    """(P(hit | exact miss), P(false | hit)) implied by the config, in closed form."""
    if spec.hit_probability is not None:
        return spec.hit_probability, spec.false_hit_rate
    from scipy import stats

    q, th = spec.paraphrase_share, spec.similarity_threshold
    p_true = q * float(stats.beta.sf(th, spec.similarity_paraphrase.a, spec.similarity_paraphrase.b))
    p_false = (1.0 - q) * float(stats.beta.sf(th, spec.similarity_unrelated.a, spec.similarity_unrelated.b))
    hit = p_true + p_false
    return hit, (p_false / hit if hit > 0 else 0.0)


class SemanticCache:
    def __init__(self, spec: SemanticCacheSpec, rng: np.random.Generator):
        self.spec = spec
        self.rng = rng
        self.latency_s = spec.latency_s

    def lookup_block(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(hit, false_hit) masks for n requests (all assumed to have missed the exact cache)."""
        s = self.spec
        u1 = self.rng.random(n)
        u2 = self.rng.random(n)
        sim_par = self.rng.beta(s.similarity_paraphrase.a, s.similarity_paraphrase.b, n)
        sim_unrel = self.rng.beta(s.similarity_unrelated.a, s.similarity_unrelated.b, n)
        if s.hit_probability is not None:
            hit = u1 < s.hit_probability
            return hit, hit & (u2 < s.false_hit_rate)
        paraphrase = u1 < s.paraphrase_share
        similarity = np.where(paraphrase, sim_par, sim_unrel)
        hit = similarity >= s.similarity_threshold
        return hit, hit & ~paraphrase
