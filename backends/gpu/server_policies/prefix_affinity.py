"""prefix_affinity: the server whose prefix cache holds the longest leading run of the prompt's blocks,
unless its load exceeds the least-loaded server's by more than `load_cap` requests (then the least-loaded
one: SGLang's cache-aware router and Dynamo's KV router trade cache hits against load the same way). Ties
go to the less loaded, then the lower index; a prompt cached nowhere goes to the least-loaded server."""

from __future__ import annotations

from collections.abc import Sequence

from backends.gpu.server import Server
from sim.config.server_routing import ServerRoutingSpec


class Affinity:
    def __init__(self, load_cap: int):
        self.load_cap = load_cap

    def pick(self, candidates: Sequence[Server], loads: Sequence[int], matches: Sequence[int]) -> Server:
        least = min(range(len(candidates)), key=lambda k: (loads[k], -matches[k]))
        best = min(range(len(candidates)), key=lambda k: (-matches[k], loads[k]))
        if matches[best] == 0 or loads[best] - loads[least] > self.load_cap:
            return candidates[least]
        return candidates[best]


class PrefixAffinity:
    name = "prefix_affinity"
    pins = True
    needs_prefix_cache = True

    def chooser(self, spec: ServerRoutingSpec) -> Affinity:
        return Affinity(spec.load_cap)


POLICY = PrefixAffinity()
