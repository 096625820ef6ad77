"""The package version, where every layer may read it (`import sim` re-exports it)."""

__version__ = "0.1.0"
