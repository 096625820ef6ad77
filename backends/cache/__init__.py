"""Caches in front of the backends: exact response cache, semantic cache, prefix cache."""
