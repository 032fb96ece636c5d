"""The app caps glibc's malloc arenas itself (a classroom of sessions otherwise grows the server ~100 MB each)."""

import platform

import pytest

from explorer.core.memory import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's arena cap is a glibc feature")
def test_glibc_accepts_the_arena_cap():
    assert limit_malloc_arenas(2) is True
    assert limit_malloc_arenas(8) is True  # may be raised again: it is a setting, not a one-way door
