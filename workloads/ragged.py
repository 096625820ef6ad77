"""Ragged rows (a flat array plus n + 1 offsets), as the prefix-hash columns of a request block."""

from __future__ import annotations

import numpy as np


def ragged_gather(flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows `rows` (in that order) of the ragged array (flat, offsets): (new flat, new offsets)."""
    rows = np.asarray(rows, dtype=np.int64)
    lengths = np.diff(offsets)[rows]
    new_off = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_off[1:])
    starts = np.asarray(offsets[:-1])[rows]
    idx = np.repeat(starts - new_off[:-1], lengths) + np.arange(new_off[-1], dtype=np.int64)
    return np.asarray(flat)[idx].astype(np.int64, copy=False), new_off
