"""Explicit random streams: one `SeedSequence(seed)` per experiment, spawned per replication and component.

A stream is addressed by (replication, component, sub): `spawn_key = (replication, component_id, sub)`.
Component ids are fixed here, so adding a component, a class or a provider never shifts another
component's draws (common random numbers across config variants), and replication r's streams do not
depend on how many replications run or on which worker runs them.
"""

from __future__ import annotations

import zlib

import numpy as np

COMPONENTS: dict[str, int] = {
    "arrivals": 0,
    "classes": 1,
    "input_tokens": 2,
    "output_tokens": 3,
    "cache": 4,
    "api": 5,
    "gpu": 6,
    "cold_start": 7,
    "failures": 8,
    "outages": 9,
    "router": 10,
    "batch_delay": 11,
    "semantic_cache": 12,
    "sessions": 13,
    "bursts": 14,
    "noise": 15,
    "retries": 16,
    "autoscaler": 17,
    "escalation": 18,
}


def name_key(name: str) -> int:
    """A stable sub-key for a named thing (a class, a provider): crc32 of its name."""
    return zlib.crc32(name.encode("utf-8"))


def stream(seed: int, replication: int, component: str, sub: int = 0) -> np.random.Generator:
    """The generator for one component of one replication."""
    ss = np.random.SeedSequence(entropy=seed, spawn_key=(replication, COMPONENTS[component], sub))
    return np.random.Generator(np.random.PCG64(ss))
