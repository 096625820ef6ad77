"""Keep the C heap from creeping over long runs (glibc only; elsewhere a no-op).

A replication allocates and frees numpy arrays block after block. glibc's malloc raises its mmap threshold
each time a large mmapped chunk is freed (up to 32 MiB, and its trim threshold to twice that), after which
arrays of those sizes come from the heap, whose free space goes back to the system only from its top: over
a simulated week the resident set grew by ~6 MiB per simulated day with no live data behind it. Pinning the
threshold stops the drift. Measured on the weekday benchmark (peak RSS at 24 h -> 168 h; system CPU time
at 168 h): not pinned 176 -> 218 MiB (0.2 s); 128 KiB (glibc's initial value) 157 -> 165 MiB (2.5 s: every
block-sized array is mmapped and faulted in afresh); 1 MiB 158 -> 173 MiB (1.2 s); 4 MiB 173 -> 183 MiB
(0.7 s). 1 MiB is the middle: block-sized arrays are recycled on the heap, and the heap cannot drift. It
changes no result: it moves where memory lives, not what is computed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h
_MMAP_THRESHOLD_BYTES = 1024 * 1024
_done = False


def bound_heap_growth() -> bool:
    """Pin glibc's mmap threshold (and so its trim threshold) once per process; True when it took effect."""
    global _done  # once per process: the setting is process-wide by nature
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc without mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES))
    return _done
