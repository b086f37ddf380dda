"""Give freed memory back to the operating system between big steps.

Converters (tf2onnx, the TFLite converter) allocate and free gigabytes of
small objects; glibc keeps the freed heap pages, so a process that runs
several conversions in a row holds the peak of all of them. `release()`
collects garbage and asks glibc to return free pages (`malloc_trim`).
"""

import ctypes
import gc

_LIBC = None


def release():
    """`gc.collect()`, then `malloc_trim(0)` where the C library is glibc (a no-op elsewhere)."""
    global _LIBC
    gc.collect()
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)
