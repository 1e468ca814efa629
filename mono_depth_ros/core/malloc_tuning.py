"""Keep large per-frame buffers in the heap (glibc ``mallopt``), ROS-free.

A 1280x720 XYZRGB cloud is a 14.7 MB message, and every frame makes a few buffers of that size
(message data, the middleware's serialised copy). glibc serves blocks above its mmap threshold
with fresh ``mmap`` pages and gives them back on ``free``, so each frame page-faults ~3600 fresh
pages per buffer; after a free its dynamic threshold adapts only partly, and the heap top is
trimmed back to the OS when more than the trim threshold is free. Measured on the project's
2-core CPU (``mono-depth-ros bench`` serialize stage, 720p cloud): the time doubled to
quadrupled from one run to the next with glibc's defaults; with both thresholds fixed it stays
near its floor. :func:`keep_large_buffers` fixes them (mmap threshold 32 MiB, glibc's largest;
trim threshold 256 MiB): the memory stays in the process for the next frame.

Nothing is changed when the user set ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``
(glibc reads those itself), or off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: glibc's mallopt parameter numbers (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 256 * 1024 * 1024
USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_large_buffers() -> bool:
    """Set glibc's mmap and trim thresholds for frame-sized buffers (see the module docstring).

    Returns:
        True when both were set; False off glibc, when ``mallopt`` refused, or when the user's
        environment already sets either threshold.
    """
    if any(v in os.environ for v in USER_VARIABLES):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
