"""Backends: the response cache, paid LLM APIs, the self-hosted GPU pool, and routing between them."""
