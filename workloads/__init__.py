"""Workload models: distributions, arrival processes, request mixes and trace replay."""
