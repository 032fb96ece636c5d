"""Keep the server's memory flat when a whole class connects: cap glibc's malloc arenas."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

M_ARENA_MAX = -8  # glibc's mallopt parameter number for the arena limit (malloc.h)
_frozen = False  # whether release_free_memory has moved the long-lived objects out of the collector's sight


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def release_free_memory() -> bool:
    """Collect garbage cycles, then hand the heap's free pages back to the system (glibc's malloc_trim). Every
    script run leaves a cycle (the page's module namespace and the functions defined in it) holding what the run
    computed, batches of images included. Streamlit collects after every run, which took a quarter of the server's
    time with 30 sessions (py-spy); .streamlit/config.toml turns that off and the torch worker calls this every few
    seconds instead. True when glibc trimmed (False elsewhere; the collection runs anyway)."""
    global _frozen
    gc.collect()
    if not _frozen:
        # What is alive at the first call (the imported libraries, the loaded model) lives as long as the server:
        # leaving it out of later collections took one from 190 ms (torch, plotly and Streamlit loaded) to 20 ms.
        gc.freeze()
        _frozen = True
    try:
        _libc().malloc_trim(0)  # its answer says whether pages were freed, not whether it worked
    except (OSError, AttributeError):
        return False
    return True


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """glibc gives each thread that allocates its own arena, up to 8 per core, and Streamlit runs every session's
    script in its own thread: in the 30-session load test the server grew ~100 MB per session, to 3.8 GB, and
    with MALLOC_ARENA_MAX=2 it peaked at 2.4 GB. Setting the same cap from inside the process needs no
    environment variable from the teacher. True when glibc accepted it (False elsewhere, e.g. macOS or musl)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):
        return False
