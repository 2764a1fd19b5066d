"""How the process gets its memory back from freed tensors (CPU): glibc malloc told to keep it.

PyTorch's CPU allocator has no cache: every tensor is a ``malloc`` and every freed one a ``free``. glibc
serves large blocks (above a threshold that grows to at most 32 MB) with a fresh ``mmap`` and hands them
back to the kernel with ``munmap`` when freed, so the next training step's tensors of the same size come
back as fresh, zero-filled pages, each first touch a page fault. Measured on the project's 2-core Xeon
(docs/benchmarks.md, "Memory allocator"): casting a 4096 × 4096 weight to bf16 took 30 ms with fresh
pages and 14 ms into reused ones.

:func:`reuse_freed_memory` switches glibc to serving every block from its heap (``M_MMAP_MAX`` = 0) and
to keeping freed heap memory instead of trimming it (``M_TRIM_THRESHOLD``), the effect PyTorch's CPU
tuning guides get from preloading jemalloc or tcmalloc, which this package cannot install. The cost: the
process keeps its peak memory until it exits. It is hand-written (a ``mallopt`` call through ctypes)
because no library offers it, and it does nothing off glibc (macOS, Windows, musl) or when the
environment variable ``NCVQVAE_MALLOC=system`` asks for the system's default.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import platform

log = logging.getLogger(__name__)

# mallopt parameter numbers, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
KEEP_FREED = 2**31 - 1  # trim threshold (mallopt takes an int): up to 2 GiB of freed heap top is kept
ENV = "NCVQVAE_MALLOC"
CHOICES = ("reuse", "system")
_in_effect = False  # whether reuse_freed_memory() has told glibc (it cannot be undone)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def requested() -> str:
    """The allocator setting asked for by ``NCVQVAE_MALLOC`` (``reuse``, the default, or ``system``)."""
    value = os.environ.get(ENV, "reuse").strip().lower() or "reuse"
    if value not in CHOICES:
        raise SystemExit(f"error: {ENV} must be one of {', '.join(CHOICES)}; got {value!r}")
    return value


def reuse_freed_memory() -> bool:
    """Make glibc keep and reuse freed memory for the rest of the process (see the module docstring).

    Idempotent; returns whether it is in effect (``False`` off glibc or under ``NCVQVAE_MALLOC=system``).
    """
    global _in_effect
    if _in_effect or requested() == "system":
        return _in_effect
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _in_effect = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREED))
    if not _in_effect:
        log.warning("glibc refused mallopt: freed memory goes back to the kernel as by default")
    return _in_effect


def current() -> str:
    """The allocator setting this process runs under, for its timings: ``reuse`` or ``system``."""
    return "reuse" if _in_effect else "system"
