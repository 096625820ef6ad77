"""`backends.gpu_pools.<name>.disaggregation`: this pool only prefills; another pool decodes
(backends/gpu/disaggregation.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sim.config.base import Frozen

# one 400 Gb/s RDMA NIC (ConnectX-7 / InfiniBand NDR) per server, the fabric DistServe- and Dynamo-style
# deployments move KV over between nodes (NVLink within a node is faster: give it as link_gb_s)
NDR_400G_GB_S = 50.0


class DisaggregationSpec(Frozen):
    """Prefill/decode disaggregation: this pool's servers prefill each prompt and emit its first token; its
    KV then moves to `decode_pool` (another pool of backends.gpu_pools serving the same model) in
    prompt tokens x KV bytes per token / `link_gb_s` + `link_latency_s`, and waits there for a batch (with
    its KV memory) that generates the rest of the answer."""

    decode_pool: Annotated[str, Field(min_length=1, max_length=40)]
    link_gb_s: Annotated[float, Field(gt=0, le=1e6)] | None = NDR_400G_GB_S  # null: instantaneous
    link_latency_s: Annotated[float, Field(ge=0, le=60)] = 0.0  # per transfer, on top of the bytes
