"""Paid LLM APIs: a provider's latency, prices and outages; rate limits; the call dispatcher."""
