"""One routing policy per module, each defining `POLICY` (backends/routing/registry.py collects them)."""
