"""Server routing policies, one per file, each defining `POLICY` (backends/gpu/server_policy.py)."""
