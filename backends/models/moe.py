"""Mixture-of-experts: how many distinct experts a batch touches.

With top-k routing over E experts and tokens routed independently and uniformly (the load-balancing loss
drives routers towards it), one token leaves a given expert unused with probability 1 - k/E, so n tokens
touch E * (1 - (1 - k/E)^n) distinct experts on average: k for one token, growing towards E. The weights a
MoE layer streams per iteration are those of the touched experts; its FLOPs follow the k active experts.
"""

from __future__ import annotations


def expected_experts(tokens: float, top_k: int, num_experts: int) -> float:
    """Expected number of distinct experts `tokens` tokens touch (uniform top-k routing)."""
    if tokens <= 0 or num_experts <= 0:
        return 0.0
    if top_k >= num_experts:
        return float(num_experts)
    return num_experts * (1.0 - (1.0 - top_k / num_experts) ** tokens)
