"""Models beyond the built-in catalog rows: Hugging Face config.json reader (spec), precision (weight and KV
bytes, compute rate), mixture-of-experts (experts touched per batch) and the shipped configs (library)."""
