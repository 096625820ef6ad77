"""Sessions and prompt sharing for `capsim fit`.

Sessions: a user's requests form one session until a gap longer than `gap_s` (30 minutes, the usual web
analytics cut). Per session: the number of turns; per turn after the first: the think time (the gap to
the previous turn). The turns are fitted as a geometric law (its mean), the think time as the better of
an exponential and a log-normal law by KS distance. capsim's sessions (workloads.sessions) carry the whole
conversation: turn j's prompt is the previous prompt + the previous answer + a new message. Whether the
log's prompts do is measured: the share of later turns whose input is at least 90 % of (previous input +
previous output). When most do, the sessions block is written, with the new messages' sizes fitted from
the increments; otherwise the session figures are reported but sessions stay off (the requests of a user
are then not conversations of the kind capsim models, and turning them on would change the sizes).

Prompt sharing: a scalar prompt hash gives the share of requests whose prompt was seen before and a Zipf
fit of prompt popularity (exponent s by maximum likelihood over the observed ranks, catalogue size = the
distinct prompts seen) for `cache.response`; Mooncake `hash_ids` lists (prefix blocks) give the share of
blocks, and of prompt tokens, already seen earlier (the hit ratio of an unbounded prefix cache).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from workloads.fit.sizes import SizeFit, fit_sizes

SESSION_GAP_S = 1800.0
CARRY_SHARE = 0.5


@dataclass
class SessionFit:
    users: int
    sessions: int
    mean_turns: float
    turns_p95: float
    think_family: str
    think_spec: dict[str, Any]
    think_ks_d: float
    think_mean_s: float
    carry_share: float  # later turns whose prompt holds the conversation so far
    carries_context: bool
    message: SizeFit | None
    max_context_tokens: int
    gap_s: float


@dataclass
class SharingFit:
    kind: str  # prompt | prefix
    requests: int
    repeat_share: float  # prompt: requests whose prompt was seen before; prefix: blocks seen before
    token_share: float  # prefix: share of prompt tokens in blocks seen before (prompt: = repeat_share)
    distinct: int
    zipf_s: float | None = None


def fit_sessions(
    t: np.ndarray, users: np.ndarray, tin: np.ndarray, tout: np.ndarray, gap_s: float = SESSION_GAP_S
) -> SessionFit | None:
    """Sessions of users (None when fewer than 2 users have an id or no user has 2 requests)."""
    have = np.array([u is not None for u in users], dtype=bool)
    if have.sum() < 2:
        return None
    ids = np.unique(users[have].astype(str), return_inverse=True)[1]
    t_u, tin_u, tout_u = t[have], tin[have], tout[have]
    order = np.lexsort((t_u, ids))
    uid, tt, ii, oo = ids[order], t_u[order], tin_u[order], tout_u[order]
    same_user = np.concatenate([[False], uid[1:] == uid[:-1]])
    gap = np.concatenate([[np.inf], np.diff(tt)])
    cont = same_user & (gap <= gap_s)  # this request continues the previous one's session
    session = np.cumsum(~cont) - 1
    turns = np.bincount(session)
    if turns.max() < 2:
        return None
    think = gap[cont]
    # context carrying: later turns whose input holds the previous input and output
    prev_i, prev_o = np.roll(ii, 1), np.roll(oo, 1)
    valid = cont & np.isfinite(ii) & np.isfinite(prev_i) & np.isfinite(prev_o)
    carried = ii[valid] >= 0.9 * (prev_i[valid] + prev_o[valid])
    carry_share = float(carried.mean()) if carried.size else 0.0
    carries = carry_share >= CARRY_SHARE
    message: SizeFit | None = None
    if carries:
        first = ~cont & np.isfinite(ii)
        inc = ii[valid] - prev_i[valid] - prev_o[valid]
        msgs = np.concatenate([ii[first], np.maximum(inc, 1.0)])
        message = fit_sizes(msgs)
    think_pos = np.maximum(think, 1e-3)
    family, spec, d = _fit_think(think_pos)
    finite_in = ii[np.isfinite(ii)]
    return SessionFit(
        users=int(ids.max()) + 1,
        sessions=int(turns.size),
        mean_turns=float(turns.mean()),
        turns_p95=float(np.quantile(turns, 0.95)),
        think_family=family,
        think_spec=spec,
        think_ks_d=d,
        think_mean_s=float(think_pos.mean()) if think_pos.size else 0.0,
        carry_share=carry_share,
        carries_context=carries,
        message=message,
        max_context_tokens=int(max(finite_in.max(), 1.0)) if finite_in.size else 128_000,
        gap_s=gap_s,
    )


def _fit_think(x: np.ndarray) -> tuple[str, dict[str, Any], float]:
    if x.size == 0:
        return "exponential", {"dist": "exponential", "mean": 60.0}, 1.0
    mean = float(x.mean())
    d_exp = float(stats.kstest(x, stats.expon(scale=mean).cdf).statistic)
    lx = np.log(x)
    mu, sigma = float(lx.mean()), float(min(max(lx.std(), 1e-6), 10.0))
    d_ln = float(stats.kstest(x, stats.lognorm(s=sigma, scale=math.exp(mu)).cdf).statistic)
    if d_ln < d_exp:
        return "lognormal", {"dist": "lognormal", "median": math.exp(mu), "sigma": sigma}, d_ln
    return "exponential", {"dist": "exponential", "mean": mean}, d_exp


def fit_sharing(hashes: np.ndarray, tin: np.ndarray, block_tokens: int = 512) -> SharingFit | None:
    have = [h for h in hashes if h is not None]
    if not have:
        return None
    if all(isinstance(h, tuple) for h in have):
        seen: set[int] = set()
        blocks = reused = 0
        tok_total = tok_reused = 0.0
        for h, n_in in zip(hashes, tin, strict=True):
            if h is None:
                continue
            leading = True
            n_tok = float(n_in) if np.isfinite(n_in) else float(len(h) * block_tokens)
            for j, b in enumerate(h):
                blocks += 1
                hit = b in seen
                if hit:
                    reused += 1
                    if leading:
                        tok_reused += min(block_tokens, max(n_tok - j * block_tokens, 0.0))
                else:
                    leading = False
                    seen.add(b)
            tok_total += n_tok
        return SharingFit(
            "prefix",
            len(have),
            reused / blocks if blocks else 0.0,
            tok_reused / tok_total if tok_total else 0.0,
            len(seen),
        )
    keys = np.asarray([str(h) for h in have], dtype=object)
    _, counts = np.unique(keys, return_counts=True)
    n, distinct = int(keys.size), int(counts.size)
    repeat = 1.0 - distinct / n
    return SharingFit("prompt", n, repeat, repeat, distinct, zipf_mle(np.sort(counts)[::-1]))


def zipf_mle(counts_desc: np.ndarray) -> float | None:
    """Zipf exponent by maximum likelihood over observed ranks (catalogue = the distinct values seen)."""
    c = np.asarray(counts_desc, dtype=np.float64)
    if c.size < 2 or c[0] <= 1:
        return None
    lr = np.log(np.arange(1, c.size + 1, dtype=np.float64))
    n = c.sum()
    a = float(np.dot(c, lr))

    def nll(s: float) -> float:
        return s * a + n * math.log(float(np.sum(np.exp(-s * lr))))

    res = optimize.minimize_scalar(nll, bounds=(0.01, 10.0), method="bounded", options={"xatol": 1e-6})
    return float(res.x)
