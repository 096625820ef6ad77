"""Shared hypothesis strategies (add to this module; do not fork it)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st


@dataclass(frozen=True)
class GpuCase:
    """A small workload for one GPU server plus the server's batching and KV parameters."""

    arrivals: list[float]
    inputs: list[int]
    outputs: list[int]
    priorities: list[int]
    base: float
    per_seq: float
    per_prefill: float
    per_kv: float
    max_batch: int
    kv_tokens: int
    paged: bool
    block: int
    chunk: int | None


@st.composite
def gpu_cases(draw: st.DrawFn, max_requests: int = 40) -> GpuCase:
    n = draw(st.integers(1, max_requests))
    gaps = draw(st.lists(st.floats(0.0005, 0.2), min_size=n, max_size=n))
    arrivals, t = [], 0.0
    for g in gaps:
        t += g
        arrivals.append(t)
    paged = draw(st.sampled_from([True, True, True, False]))
    block = draw(st.sampled_from([1, 4, 16])) if paged else 1
    inputs = draw(st.lists(st.integers(1, 120), min_size=n, max_size=n))
    outputs = draw(st.lists(st.integers(1, 60), min_size=n, max_size=n))
    biggest = max(i + o for i, o in zip(inputs, outputs, strict=True))
    # tight memory: between what the biggest request needs alone and a few times that
    kv_tokens = draw(st.integers(biggest + block, 4 * biggest + 4 * block))
    return GpuCase(
        arrivals=arrivals,
        inputs=inputs,
        outputs=outputs,
        priorities=draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)),
        base=draw(st.floats(0.001, 0.02)),
        per_seq=draw(st.sampled_from([0.0, 0.0003, 0.001])),
        per_prefill=draw(st.sampled_from([0.0, 1e-5, 1e-4])),
        per_kv=draw(st.sampled_from([0.0, 1e-6, 2e-5])),
        max_batch=draw(st.integers(1, 12)),
        kv_tokens=kv_tokens,
        paged=paged,
        block=block,
        chunk=draw(st.sampled_from([None, None, 16, 64, 200])),
    )
