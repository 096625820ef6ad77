"""Prompt-prefix reuse from a trace's block hashes (Mooncake format): an LRU of prompt blocks.

A request's prompt is a chain of `block_tokens`-token blocks named by `hash_ids` (a block's id stands for
the whole prefix up to it). In arrival order, a request's cached prefix is its leading run of blocks found
in the LRU; then all its blocks are touched (inserted or refreshed) and the least recently used blocks
beyond `capacity_blocks` are evicted. The cached prefix is billed at the API's cached-input price and
skipped by the GPU's prefill (at least one prompt token is always prefilled). One LRU stands for the
prefix caches of every backend (as if routing kept prefixes where they are cached).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from sim.config.cache import PrefixCacheSpec
from sim.core.request_block import FLAG_PREFIX, RequestBlock


class PrefixCache:
    def __init__(self, spec: PrefixCacheSpec):
        self.capacity = spec.capacity_blocks
        self.block_tokens = spec.block_tokens
        self._lru: OrderedDict[int, None] = OrderedDict()

    def matched_blocks(self, hashes: list[int]) -> int:
        """Leading blocks of this prompt found in the cache, then touch all of them."""
        lru, cap = self._lru, self.capacity
        matched = 0
        leading = True
        for h in hashes:
            if h in lru:
                lru.move_to_end(h)
                if leading:
                    matched += 1
            else:
                leading = False
                if cap <= 0:
                    continue
                lru[h] = None
                if len(lru) > cap:
                    lru.popitem(last=False)
        return matched

    def leading_blocks(self, hashes: list[int]) -> int:
        """Leading blocks of this prompt found in the cache, touching nothing (a router's look)."""
        lru = self._lru
        matched = 0
        for h in hashes:
            if h not in lru:
                break
            matched += 1
        return matched

    def resize(self, capacity_blocks: int) -> None:
        """Hold at most `capacity_blocks` from now on, evicting the least recently used beyond it."""
        self.capacity = capacity_blocks
        lru = self._lru
        while len(lru) > max(capacity_blocks, 0):
            lru.popitem(last=False)

    def apply(self, block: RequestBlock, idx: np.ndarray) -> None:
        """Fill cached_tokens / prefill_tokens of requests `idx` (in arrival order) from their hash_ids."""
        if block.hash_ids is None or block.hash_offsets is None or len(idx) == 0:
            return
        ids, off = block.hash_ids, block.hash_offsets
        inp = block.input_tokens
        bt = self.block_tokens
        cached = np.zeros(len(idx), dtype=np.int64)
        for j, i in enumerate(idx.tolist()):
            m = self.matched_blocks(ids[off[i] : off[i + 1]].tolist())
            cached[j] = min(m * bt, max(int(inp[i]) - 1, 0))
        block.cached_tokens[idx] = cached
        block.prefill_tokens[idx] = inp[idx] - cached
        block.flags[idx] |= FLAG_PREFIX

    def __len__(self) -> int:
        return len(self._lru)
