"""The self-hosted GPU pool: catalog, performance model, servers, pool, autoscaler."""
