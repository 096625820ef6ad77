"""least_loaded: the pool's shared queue; the lowest idle server, else the least-loaded busy one with room,
takes the next request (the GPU server semantics of docs/architecture.md). It pins nothing."""

from __future__ import annotations

from collections.abc import Sequence

from backends.gpu.server import Server
from sim.config.server_routing import ServerRoutingSpec


class LeastLoaded:
    name = "least_loaded"
    pins = False
    needs_prefix_cache = False

    def chooser(self, spec: ServerRoutingSpec) -> LeastLoaded:
        return self

    def pick(self, candidates: Sequence[Server], loads: Sequence[int], matches: Sequence[int], blocks: int) -> Server:
        raise AssertionError("least_loaded pins nothing: the shared queue decides")


POLICY = LeastLoaded()
