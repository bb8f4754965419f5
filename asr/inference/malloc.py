"""Process-wide glibc heap settings for long-running transcription.

Example::

    bound_malloc_heap()   # once, at start-up (``asr transcribe`` does)
"""

from __future__ import annotations

import ctypes

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def bound_malloc_heap(threshold_bytes: int = 128 * 1024) -> bool:
    """Make glibc return freed tensor buffers to the OS (process-wide; call once at start-up).

    glibc raises its mmap threshold after each large free (up to 32 MB), so later tensors of
    similar size come from the heap; with chunks of varying length the heap fragments and RSS
    creeps up with the length of the recording (+130 MB over one hour with the small model).
    A fixed threshold keeps it flat. Returns False where this is not glibc (nothing changed).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes)))
    except (OSError, AttributeError):
        return False
