"""glibc's allocator on CPU runs: keep freed memory in the process for the next step to reuse.

By default glibc serves every block above a threshold (128 KB, rising with use) with a fresh ``mmap``
and hands freed memory above 128 KB at the heap's top back to the kernel. A CPU training step or a
detector batch allocates and frees the same tens of megabytes layer after layer, so each of them maps
and page-faults that memory anew: the effnet-lite0 detector spent about half its time in page faults
(40 vs 21 ms an image at 16 images a batch on one thread here; small GAN steps: 0-10 % faster).

:func:`keep_freed_memory` sets, through ``mallopt``, what ``GLIBC_TUNABLES`` would at start-up: blocks up
to 32 MB (glibc's largest mmap threshold) from the heap, freed memory kept up to 1 GB, the heap grown
64 MB at a time. The cost is that a process keeps its peak heap. Numbers are unchanged (only where
memory comes from). Where the user set ``GLIBC_TUNABLES`` or ``MALLOC_*`` variables, or libc is not
glibc, nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = {
    M_MMAP_THRESHOLD: 32 * 2**20,  # the largest glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)
    M_TRIM_THRESHOLD: 2**30,
    M_TOP_PAD: 64 * 2**20,
}


def user_tuned() -> bool:
    """The environment already tunes glibc's allocator (``GLIBC_TUNABLES``, ``MALLOC_*_``): theirs wins."""
    return "GLIBC_TUNABLES" in os.environ or any(k.startswith("MALLOC_") for k in os.environ)


def keep_freed_memory() -> bool:
    """Apply :data:`SETTINGS` to this process's glibc allocator; True when every one took effect."""
    if not sys.platform.startswith("linux") or user_tuned():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc: its own allocator, left alone
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
