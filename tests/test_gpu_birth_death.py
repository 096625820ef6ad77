"""Continuous batching against the exact chain embedded at iteration starts.

One server, Poisson(lam) arrivals, geometric output lengths (each running request finishes at the end of
an iteration with probability p, independently), iteration time d(b) = base + per_seq*b for a batch of
b = min(n, K) requests, no prefill or KV cost. Iterations are synchronous, so the continuous-time process
is not a birth-death CTMC; the exact object is the chain of the number in system n at iteration starts:
during an iteration of a batch b, A ~ Poisson(lam d(b)) requests arrive (they wait for the next boundary)
and D ~ Binomial(b, p) leave at its end, so n' = n + A - D; when n' = 0 the server idles until the next
arrival, which starts an iteration with n = 1. By renewal-reward over the iterations (and idle periods),

    E[N] = sum_n pi_n (n d_n + lam d_n^2 / 2) / sum_n pi_n (d_n + P(n' = 0 | n) / lam),

and Little's law gives the mean latency W = E[N] / lam.
"""

from __future__ import annotations

import numpy as np
from gpu_support import gpu_experiment
from scipy import stats

from sim.engine.replication import simulate

BASE, PER_SEQ, K, MEAN_OUT = 0.010, 0.0005, 32, 20.0
P = 1.0 / MEAN_OUT


def chain_mean_in_system(lam: float, base: float, per_seq: float, k: int, p: float, n_max: int = 300) -> float:
    states = np.arange(1, n_max + 1)
    b = np.minimum(states, k)
    d = base + per_seq * b
    T = np.zeros((n_max, n_max))
    a_max = int(stats.poisson.ppf(1 - 1e-15, lam * d.max())) + 2
    for idx, n in enumerate(states):
        pa = stats.poisson.pmf(np.arange(a_max + 1), lam * d[idx])
        pd = stats.binom.pmf(np.arange(b[idx] + 1), b[idx], p)
        dist = np.convolve(pa, pd[::-1])  # index j <-> A - D = j - b
        nxt = n - b[idx] + np.arange(len(dist))
        nxt = np.clip(nxt, 1, n_max)  # 0 -> idle -> next iteration starts with 1; truncation at n_max
        np.add.at(T[idx], nxt - 1, dist)
    M = T.T - np.eye(n_max)
    M[-1, :] = 1.0  # replace one balance equation by the normalisation
    rhs = np.zeros(n_max)
    rhs[-1] = 1.0
    pi = np.linalg.solve(M, rhs)
    p_empty = np.where(states <= k, np.exp(-lam * d) * p**b, 0.0)
    num = np.sum(pi * (states * d + lam * d * d / 2.0))
    den = np.sum(pi * (d + p_empty / lam))
    assert pi[-50:].sum() < 1e-9, "truncate later"
    return float(num / den)


def test_chain_is_m_m_1_like_at_k1_light_load() -> None:
    # K = 1, per_seq = 0: a single request at a time with service d * Geometric(p) tokens: M/G/1 with
    # discrete service; compare with Pollaczek-Khinchine using the service moments.
    lam, d = 2.0, 0.01
    es = d / P
    es2 = d * d * (2 - P) / (P * P)
    rho = lam * es
    wq = lam * es2 / (2 * (1 - rho))
    # the queue in our chain admits only at iteration boundaries; for K = 1 a finishing request's
    # successor starts at the same boundary, so the process is exactly M/G/1
    en = chain_mean_in_system(lam, d, 0.0, 1, P)
    assert abs(en / lam - (wq + es)) / (wq + es) < 1e-6


def test_continuous_batching_matches_chain_at_high_load() -> None:
    lam = 50.0  # capacity K p / d(K) = 61.5 req/s: load 0.81
    capacity = K * P / (BASE + PER_SEQ * K)
    assert lam / capacity >= 0.8
    en = chain_mean_in_system(lam, BASE, PER_SEQ, K, P)
    w_exact = en / lam
    pool = {
        "servers": 1,
        "max_batch": K,
        "kv_policy": "reserve",
        "kv_cache_tokens": 10_000_000,
        "iteration_s": {"base": BASE, "per_seq": PER_SEQ},
        "cold_start_s": {"dist": "constant", "value": 0},
    }
    w, n = [], []
    warmup_min = 3
    for rep in range(4):
        exp = gpu_experiment(lam, horizon_h=0.4, pool=pool, warmup_h=warmup_min / 60, seed=11)
        exp = exp.model_copy(update={"output": exp.output.model_copy(update={"timeseries": True})})
        r = simulate(exp, rep)
        w.append(r.metrics["e2e_mean_s"])
        n.append(float(np.mean(r.timeseries["in_flight"][warmup_min:])))
    w_sim, n_sim = float(np.mean(w)), float(np.mean(n))
    half = stats.t.ppf(0.975, len(w) - 1) * np.std(w, ddof=1) / np.sqrt(len(w))
    print(f"E[N] exact {en:.4f} sim {n_sim:.4f};  W exact {w_exact:.4f} s  sim {w_sim:.4f} +- {half:.4f} s")
    assert half / w_exact < 0.02  # the check below has the precision it claims
    assert abs(w_sim - w_exact) / w_exact < 0.03
    assert abs(n_sim - en) / en < 0.03
