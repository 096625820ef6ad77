"""The bottom layer: event-loop primitives, random streams, request columns and codes, units,
histograms, per-minute series, statistics, metric names, atomic writes. Imports nothing else of capsim."""
