"""Closed-form queueing results the textbook tests compare against."""

from __future__ import annotations


def erlang_c(c: int, a: float) -> float:
    """P(an arrival waits) in M/M/c with offered load a = lambda E[S] < c (stable Erlang B recursion)."""
    if not 0 <= a < c:
        raise ValueError(f"need 0 <= a < c, got a={a}, c={c}")
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1.0 - b))


def mmc_wait(c: int, lam: float, mean_service: float) -> float:
    """Mean wait in queue of M/M/c: Wq = C(c, a) / (c mu - lambda)."""
    return erlang_c(c, lam * mean_service) / (c / mean_service - lam)


def pk_wait(lam: float, es: float, es2: float) -> float:
    """Pollaczek-Khinchine mean wait in M/G/1: Wq = lambda E[S^2] / (2 (1 - rho))."""
    rho = lam * es
    if not 0 <= rho < 1:
        raise ValueError(f"need rho < 1, got {rho}")
    return lam * es2 / (2.0 * (1.0 - rho))
