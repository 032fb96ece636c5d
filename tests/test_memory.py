"""The app caps glibc's malloc arenas itself (a classroom of sessions otherwise grows the server ~100 MB each)."""

import platform

import pytest

from explorer.core.memory import limit_malloc_arenas, release_free_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's arena cap is a glibc feature")
def test_glibc_accepts_the_arena_cap():
    assert limit_malloc_arenas(2) is True
    assert limit_malloc_arenas(8) is True  # may be raised again: it is a setting, not a one-way door


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is a glibc feature")
def test_freed_memory_can_be_handed_back():
    assert release_free_memory() is True
