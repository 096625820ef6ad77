"""prefix_affinity: the server whose prefix cache holds the longest leading run of the prompt's blocks,
unless that run is less than `min_match_share` of the prompt's blocks or the server's load exceeds the
least-loaded server's by more than `load_cap` requests (then the least-loaded one: SGLang's cache-aware
router trades cache hits against load the same way, with these defaults). Ties go to the less loaded, then
the lower index; a prompt cached nowhere goes to the least-loaded server. Without the share, a prefix that
every prompt shares (one system-prompt block) would pile every request onto one server up to the load cap."""

from __future__ import annotations

from collections.abc import Sequence

from backends.gpu.server import Server
from sim.config.server_routing import ServerRoutingSpec


class Affinity:
    def __init__(self, load_cap: int, min_match_share: float):
        self.load_cap = load_cap
        self.min_match_share = min_match_share

    def pick(self, candidates: Sequence[Server], loads: Sequence[int], matches: Sequence[int], blocks: int) -> Server:
        least = min(range(len(candidates)), key=lambda k: (loads[k], -matches[k]))
        best = min(range(len(candidates)), key=lambda k: (-matches[k], loads[k]))
        m = matches[best]
        if m == 0 or m < self.min_match_share * blocks or loads[best] - loads[least] > self.load_cap:
            return candidates[least]
        return candidates[best]


class PrefixAffinity:
    name = "prefix_affinity"
    pins = True
    needs_prefix_cache = True

    def chooser(self, spec: ServerRoutingSpec) -> Affinity:
        return Affinity(spec.load_cap, spec.min_match_share)


POLICY = PrefixAffinity()
