"""Keep freed memory in the process for the next training step (glibc's ``mallopt``).

A training step allocates its large buffers afresh (the projection and gate buffer, the states,
the gradients: about 12 MB a step for a one-layer LSTM of 128 in the CharLM step). glibc serves
allocations above its mmap threshold with fresh mappings and returns them to the system when
they are freed, so every step touched new pages and paid a page fault for each: measured here,
the CharLM step at H=128 took 32-41 ms with glibc's defaults and 26-27 ms with freed memory kept
(one gather over a fresh 5 MB buffer 2.3-6 ms against 0.5; benchmarks/NOTES.md, attempt 23).
PyTorch's caching allocator keeps its blocks for the same reason.

:func:`keep_freed_memory` raises the mmap threshold to glibc's largest (32 MB on 64-bit), so
buffers below it come from the heap and are reused, and stops the heap's top from being trimmed.
The process's resident memory then stays near its peak instead of falling between steps. It is
applied once, when rnnkit first computes, unless ``RNNKIT_KEEP_HEAP=0`` or glibc's own
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` are set (the user's choice stands); it
does nothing where the C library is not glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # glibc's malloc.h
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024            # glibc's largest on 64-bit (4 * 1 MB * sizeof(long))


def keep_freed_memory() -> bool:
    """Apply the setting (see the module's text); returns whether it was applied."""
    setting = os.environ.get("RNNKIT_KEEP_HEAP", "1").strip()
    if setting not in ("0", "1"):
        from .errors import UserError

        raise UserError(f"RNNKIT_KEEP_HEAP: expected 0 or 1, got {setting!r}")
    if (setting == "0" or not sys.platform.startswith("linux")
            or "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):                # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
