"""One long-lived thread for the pages' per-rerun torch work (generator forward passes, diagnostics).

Streamlit runs every script run in a new thread, and torch's first parallel call in a new thread starts a new
OpenMP team: a 64-sample forward pass of the shipped DCGAN took 61 ms in a fresh thread against 43 ms in a warm
one (2 cores, 2 torch threads). Handing the work to this thread keeps its team warm. One worker also queues a
classroom's slider moves instead of letting thirty sessions fight over two cores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_NAME = "latent-explorer-torch"
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_NAME)


def run(function: Callable[..., T], *args, **kwargs) -> T:
    """function(*args, **kwargs) on the torch thread; its result, or its exception raised here. The function
    must not call Streamlit (that thread has no script context): pass it the pure computation only."""
    if threading.current_thread().name.startswith(_NAME):  # already on it: queueing behind itself would hang
        return function(*args, **kwargs)
    return _WORKER.submit(function, *args, **kwargs).result()
