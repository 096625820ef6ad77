"""Which server of a GPU pool takes an arriving request, and each server's prefix cache.

Routing (`server_routing.policy`, backends/gpu/server_policy.py): while the pool's shared queue is empty, a
pinning policy (round_robin, prefix_affinity) chooses among the READY servers with room for the request
(load = running + claimed + pinned below `max_batch`, and its KV beside the batch's): an idle one starts it
at once, a busy one takes it at its next iteration boundary (pinned: ahead of the shared queue there, FCFS
on that server). A request that finds no server with room waits in the shared queue, which the first
server with room serves, as under least_loaded (the pool as it always was). So affinity holds while the
pool has room, and a saturated pool degrades to one queue, as routers in front of vLLM do in effect when
every worker is full.

Prefix cache (`prefix_cache`): a server keeps the prompt blocks it served, named by the requests'
`hash_ids` (a block's id stands for the whole prefix up to it), in an LRU (backends.cache.prefix). They
live in the KV memory its running batch leaves free: each time the cache is consulted it keeps at most
(KV capacity - KV the batch held at its last boundary) / `block_tokens` blocks, the least recently used
evicted first, the way vLLM frees cached blocks on demand; cached blocks never hold up an admission (the
running sequences win), and a request that hits still holds its whole prompt's KV while it runs. A request
is looked up once, on the server that first takes it (at its arrival when started or pinned, at its
admission from the shared queue): its leading run of cached blocks is not prefilled (at least one prompt
token is), then its blocks are touched. Lookups are in arrival order on one server with one priority level,
so one server with room enough for every block finds exactly what the global prefix cache (cache.prefix)
finds. A request moved to another server by a failure keeps what its first lookup found.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from backends.cache.prefix import PrefixCache
from backends.gpu.batching import BatchEngine
from backends.gpu.server import READY, Job, Server
from backends.gpu.server_policy import server_policy_of
from sim.config.backends import GpuPoolSpec
from sim.config.cache import PrefixCacheSpec
from sim.core.request_block import FLAG_PREFIX, RequestBlock


class ServerRouter:
    def __init__(self, spec: GpuPoolSpec, engine: BatchEngine, warmup_s: float):
        self.engine = engine
        self.policy = server_policy_of(spec.server_routing.policy)
        self.chooser = self.policy.chooser(spec.server_routing)
        n = len(engine.servers)
        pc = spec.prefix_cache
        self.block_tokens = pc.block_tokens
        self.caches: list[PrefixCache] | None = None
        if pc.enabled:
            cache_spec = PrefixCacheSpec(enabled=True, capacity_blocks=0, block_tokens=pc.block_tokens)
            self.caches = [PrefixCache(cache_spec) for _ in range(n)]
            engine.prefix_lookup = self.lookup_job
        if self.policy.pins:
            engine.pinned = [deque() for _ in range(n)]
        self.warmup_s = warmup_s
        # per server, requests arriving after warm-up: input tokens looked up, and those found cached
        self.looked_tokens = np.zeros(n, dtype=np.int64)
        self.cached_tokens = np.zeros(n, dtype=np.int64)

    # -- placing an arrival (the shared queue is empty) ----------------------------------------
    def place(
        self, block: RequestBlock, i: int, now: float, inp: int, out: int, priority: int, deadline: float
    ) -> bool:
        """Start or pin a request arriving now on the server the policy chooses; False: no server has room
        (or, unpinned, none is idle), the request joins the shared queue."""
        engine = self.engine
        if not self.policy.pins:
            s = engine.pop_idle() if engine.idle else None
            if s is None:
                return False
            engine.start_segment(s, now, [Job(block, i, now, inp, out, priority, deadline, self.lookup(s, block, i))])
            return True
        candidates, loads = self._with_room(inp if engine.paged else inp + out)
        if not candidates:
            return False
        if self.caches is not None and block.hash_ids is not None:
            hashes = self._hashes(block, i)
            matches = [self.caches[s.idx].leading_blocks(hashes) for s in candidates]
        else:
            hashes, matches = [], [0] * len(candidates)
        s = self.chooser.pick(candidates, loads, matches, len(hashes))
        job = Job(block, i, now, inp, out, priority, deadline, self.lookup(s, block, i))
        if s.running:
            assert engine.pinned is not None
            engine.pinned[s.idx].append(job)
            engine.num_pinned += 1
            engine.wake(s)
        else:
            engine.start_segment(s, now, [job])
        return True

    def _with_room(self, need: int) -> tuple[list[Server], list[int]]:
        """READY servers taking requests with a batch slot and KV room for `need` more tokens (beside the
        batch at its last boundary, its claims and the requests pinned to it), and their loads."""
        engine = self.engine
        pinned = engine.pinned
        assert pinned is not None
        paged, cap, max_batch = engine.paged, engine.kv_capacity, engine.max_batch
        candidates: list[Server] = []
        loads: list[int] = []
        for s in engine.servers:
            if s.state != READY or s.draining:
                continue
            mine = pinned[s.idx]
            load = len(s.running) + s.claims + len(mine)
            if load >= max_batch:
                continue
            if s.running:
                used = s.tokens_at(s.iters + 1) if paged else s.kv_reserved
                used += s.claims_kv + sum(j.inp_eff if paged else j.input + j.output for j in mine)
                if used + need > cap:
                    continue
            candidates.append(s)
            loads.append(load)
        return candidates, loads

    # -- the prefix cache ----------------------------------------------------------------------
    @staticmethod
    def _hashes(block: RequestBlock, i: int) -> list[int]:
        assert block.hash_ids is not None and block.hash_offsets is not None
        off = block.hash_offsets
        return block.hash_ids[off[i] : off[i + 1]].tolist()

    def _free_blocks(self, s: Server) -> int:
        """Prefix blocks that fit into the KV memory the batch of `s` left free at its last boundary."""
        e = self.engine
        free = (e.cap_blocks - s.blocks_at(s.iters + 1)) * e.bs if e.paged else e.kv_capacity - s.kv_reserved
        return max(free, 0) // self.block_tokens

    def lookup(self, s: Server, block: RequestBlock, i: int) -> int:
        """Request i's prompt tokens cached on `s` (not prefilled again); its blocks are touched there."""
        caches = self.caches
        if caches is None or block.hash_ids is None:
            return 0
        cache = caches[s.idx]
        cache.resize(self._free_blocks(s))
        inp = int(block.input_tokens[i])
        cached = min(cache.matched_blocks(self._hashes(block, i)) * self.block_tokens, max(inp - 1, 0))
        block.cached_tokens[i] = cached
        block.prefill_tokens[i] = inp - cached
        block.flags[i] |= FLAG_PREFIX
        if block.arrival_at[i] >= self.warmup_s:
            self.looked_tokens[s.idx] += inp
            self.cached_tokens[s.idx] += cached
        return cached

    def lookup_job(self, s: Server, job: Job) -> None:
        """The batching engine's hook at an admission from the shared queue: a request's first lookup."""
        block, i = job.block, job.i
        if block.hash_ids is not None and not int(block.flags[i]) & FLAG_PREFIX:
            job.cached = self.lookup(s, block, i)
