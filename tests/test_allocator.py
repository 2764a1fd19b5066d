"""ncvqvae.allocator: glibc told to keep freed memory, opt-out by environment, a clear error otherwise."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from ncvqvae import allocator

# a child process allocates 64 MB and reports how many more bytes glibc then serves with their own mmap
CHILD = """
import ctypes, sys
from ncvqvae.allocator import current, reuse_freed_memory
from ncvqvae.training import machine_info
active = reuse_freed_memory()
assert machine_info("cpu")["allocator"] == current() == ("reuse" if active else "system")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
before = libc.mallinfo2().hblkhd
block = bytearray(64 << 20)
print(int(active), libc.mallinfo2().hblkhd - before)
"""

on_glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only"
)


def _child(setting: str) -> tuple[bool, bool]:
    """(whether the setting is in effect, whether the 64 MB block came from its own mmap)."""
    env = {**os.environ, "NCVQVAE_MALLOC": setting}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    active, mmapped = out.stdout.split()
    return active == "1", int(mmapped) >= 64 << 20


@on_glibc
def test_reuse_serves_large_blocks_from_the_heap_and_system_from_mmap() -> None:
    assert _child("reuse") == (True, False)
    assert _child("system") == (False, True)


def test_requested_setting_and_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(allocator.ENV, raising=False)
    assert allocator.requested() == "reuse"
    monkeypatch.setenv(allocator.ENV, " System ")
    assert allocator.requested() == "system"
    monkeypatch.setenv(allocator.ENV, "jemalloc")
    with pytest.raises(SystemExit, match="NCVQVAE_MALLOC must be one of reuse, system; got 'jemalloc'"):
        allocator.requested()


def test_system_setting_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(allocator.ENV, "system")
    monkeypatch.setattr(allocator, "_in_effect", False)  # as in a fresh process
    assert allocator.reuse_freed_memory() is False
    assert allocator.current() == "system"
