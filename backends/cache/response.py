"""The exact-match response cache: LRU over prompt keys, with a time-to-live from insertion.

A miss inserts its prompt at the request's arrival (the answer is assumed to be stored as soon as it is
produced; concurrent duplicates of an in-flight prompt count as hits). A hit is answered after
`hit_latency_s` at no token cost. Hit decisions depend only on the order and times of arrivals, so they are
computed for a whole block at once, in arrival order, with the state carried from block to block.
A miss whose prompt is still stored but past its TTL has a stale answer (`stale`), which `routing.fallback:
cache` may serve as a degraded answer.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from sim.config.cache import ResponseCacheSpec


class ResponseCache:
    def __init__(self, spec: ResponseCacheSpec):
        self.capacity = spec.capacity
        self.ttl_s = spec.ttl_s
        self._entries: OrderedDict[int, float] = OrderedDict()
        self.stale = np.zeros(0, dtype=bool)  # of the last block looked up: misses with an expired answer

    def lookup_block(self, keys: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Hit mask for requests with these prompt keys arriving at these (sorted) times."""
        hits = np.zeros(len(keys), dtype=bool)
        stale = self.stale = np.zeros(len(keys), dtype=bool)
        if self.capacity <= 0:
            return hits
        entries = self._entries
        cap, ttl = self.capacity, self.ttl_s
        move = entries.move_to_end
        for j, (key, t) in enumerate(zip(keys.tolist(), times.tolist(), strict=True)):
            inserted = entries.get(key)
            if inserted is not None and t - inserted < ttl:
                hits[j] = True
                move(key)
                continue
            if inserted is not None:
                stale[j] = True
            entries[key] = t
            move(key)
            if len(entries) > cap:
                entries.popitem(last=False)
        return hits

    def __len__(self) -> int:
        return len(self._entries)
