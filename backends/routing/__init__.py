"""Routing: which backend serves a request, and where it goes when that backend cannot."""
