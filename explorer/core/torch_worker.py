"""One long-lived thread for the pages' per-rerun torch work (generator forward passes, diagnostics).

Streamlit runs every script run in a new thread, and torch's first parallel call in a new thread starts a new
OpenMP team: a 64-sample forward pass of the shipped DCGAN took 61 ms in a fresh thread against 43 ms in a warm
one (2 cores, 2 torch threads). Handing the work to this thread keeps its team warm. One worker also queues a
classroom's slider moves instead of letting thirty sessions fight over two cores.

`shared()` is the pages' way to ask for work another session may already have asked for: identical requests are
computed once and kept in a bounded cache for every session (explorer/core/shared_cache.py). While a request
waits behind others, the caller's thread is told where it stands (`set_wait_listener`), so a page can say so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from explorer.core.memory import release_free_memory
from explorer.core.shared_cache import SharedCache, Uncacheable, cap_bytes_from_env, request_key

T = TypeVar("T")

_NAME = "latent-explorer-torch"
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_NAME)
CACHE = SharedCache(cap_bytes_from_env())
# A request that has waited this long is reported to the thread's wait listener, then every LISTEN_EVERY seconds.
NOTICE_AFTER = 0.5
LISTEN_EVERY = 0.5
TRIM_EVERY = 5.0  # seconds between two garbage collections and hand-backs of freed memory by the worker


@dataclass(frozen=True)
class QueueState:
    """Where a waiting request stands: requests still to run before it (the running one included), the expected
    wait from the recent mean duration of one request, and how long it has waited so far."""

    ahead: int
    expected_s: float
    waited_s: float


class _Queue:
    """Tickets in submission order; the worker runs them first come, first served."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.issued = 0  # tickets handed out
        self.finished = 0  # jobs done (the worker finishes them in ticket order)
        self.mean_s = 0.05  # moving mean of a job's duration
        self.trimmed = 0.0  # when the worker last handed freed memory back

    def take(self) -> int:
        with self.lock:
            self.issued += 1
            return self.issued

    def done(self, seconds: float) -> None:
        with self.lock:
            self.finished += 1
            self.mean_s = 0.8 * self.mean_s + 0.2 * seconds

    def state(self, ticket: int, waited: float) -> QueueState:
        with self.lock:
            ahead = max(0, ticket - self.finished - 1)
            return QueueState(ahead, (ahead + 1) * self.mean_s, waited)


_QUEUE = _Queue()
_LOCAL = threading.local()
_KEY_TICKETS: dict[object, int] = {}  # a shared request in flight -> the ticket of the job computing it


def set_wait_listener(listener: Callable[[QueueState | None], None] | None) -> None:
    """Call `listener(state)` from this thread while its requests wait in the queue, and `listener(None)` when the
    wait is over. One listener per thread (None removes it); a Streamlit page sets one per script run."""
    _LOCAL.listener = listener


def queue_length() -> int:
    """Requests submitted and not yet finished."""
    with _QUEUE.lock:
        return _QUEUE.issued - _QUEUE.finished


def expected_wait() -> float:
    """Seconds a request submitted now would wait: requests not yet finished times the recent mean duration."""
    with _QUEUE.lock:
        return (_QUEUE.issued - _QUEUE.finished) * _QUEUE.mean_s


class _Threads:
    """How many torch threads a job gets: every core's worth (torch's own choice) when it runs alone, one while other
    requests wait behind it. Under a class the server's Python threads (script runs, JPEGs, the websockets) need a
    core too, and a team of two torch threads whose second thread waits for a busy core stalls at every layer: 30
    sessions dragging sliders on 2 cores got their answers in 2.7 s (p50) with one thread against 5.5 s with two."""

    def __init__(self) -> None:
        self.alone: int | None = None  # torch's thread count before the worker's first job
        self.now: int | None = None

    def set_for(self, waiting: int) -> None:
        import torch

        if self.alone is None:
            self.alone = self.now = torch.get_num_threads()
        wanted = 1 if waiting > 0 else self.alone
        if wanted != self.now:
            torch.set_num_threads(wanted)
            self.now = wanted


_THREADS = _Threads()


def _timed(function: Callable[..., T], args: tuple, kwargs: dict) -> T:
    _THREADS.set_for(queue_length() - 1)  # the requests submitted after this one and not yet run
    start = time.perf_counter()
    try:
        return function(*args, **kwargs)
    finally:
        end = time.perf_counter()
        _QUEUE.done(end - start)
        if end - _QUEUE.trimmed > TRIM_EVERY:  # tens of milliseconds, at most every TRIM_EVERY seconds
            _QUEUE.trimmed = end
            release_free_memory()


def _submit(function: Callable[..., T], args: tuple, kwargs: dict) -> tuple[int, Future]:
    ticket = _QUEUE.take()
    return ticket, _WORKER.submit(_timed, function, args, kwargs)


def _wait(is_done: Callable[[float], bool], ticket: Callable[[], int | None],
          deferred: list[BaseException] | None = None) -> None:
    """Block until is_done(timeout) says so, telling this thread's listener where the request stands. The listener
    may raise (Streamlit stops a script run that its user replaced by another at its next call): then the wait ends
    at once, or, with a `deferred` list, the exception goes there and the wait goes on until the work is done (a
    request other sessions wait for must finish)."""
    if is_done(NOTICE_AFTER):
        return
    listener = getattr(_LOCAL, "listener", None)
    start = time.monotonic() - NOTICE_AFTER

    def tell(state: QueueState | None) -> None:
        nonlocal listener
        try:
            listener(state)
        except BaseException as exc:
            listener = None
            if deferred is None:
                raise
            deferred.append(exc)

    try:
        while True:
            number = ticket()
            if listener is not None and number is not None:
                tell(_QUEUE.state(number, time.monotonic() - start))
            if is_done(LISTEN_EVERY):
                return
    finally:
        if listener is not None:
            tell(None)


def _result(ticket: int, future: Future, deferred: list[BaseException] | None = None):
    _wait(lambda timeout: _wait_future(future, timeout), lambda: ticket, deferred)
    return future.result()


def _wait_future(future: Future, timeout: float) -> bool:
    try:
        future.exception(timeout)
    except TimeoutError:
        return False
    except Exception:  # noqa: BLE001 - cancelled: result() below says so
        return True
    return True


def run(function: Callable[..., T], *args, **kwargs) -> T:
    """function(*args, **kwargs) on the torch thread; its result, or its exception raised here. The function
    must not call Streamlit (that thread has no script context): pass it the pure computation only."""
    if threading.current_thread().name.startswith(_NAME):  # already on it: queueing behind itself would hang
        return function(*args, **kwargs)
    return _result(*_submit(function, args, kwargs))


def shared(function: Callable[..., T], *args, **kwargs) -> T:
    """run(function, *args, **kwargs), computed once for every session that asks the same: same function, same
    bundle files, same arguments (tensors by value). A result of shared() passed back in as an argument counts as
    the request that made it. The result is shared: never modify it in place. Arguments without a stable identity
    (a network object, a lambda) make the request an ordinary run()."""
    try:
        key = request_key(function, args, kwargs, CACHE)
    except Uncacheable:
        return run(function, *args, **kwargs)

    interrupted: list[BaseException] = []  # this thread's listener raised while others waited for our result

    def compute() -> T:
        if threading.current_thread().name.startswith(_NAME):
            return function(*args, **kwargs)
        ticket, future = _submit(function, args, kwargs)
        _KEY_TICKETS[key] = ticket
        try:
            return _result(ticket, future, interrupted)
        finally:
            _KEY_TICKETS.pop(key, None)

    def wait_for_leader(done: threading.Event) -> None:
        _wait(lambda timeout: done.wait(timeout), lambda: _KEY_TICKETS.get(key))

    value = CACHE.get_or_compute(key, compute, wait=wait_for_leader)
    if interrupted:
        raise interrupted[0]
    return value


def holds(function: Callable, *args, **kwargs) -> bool:
    """Whether the shared cache holds the result of function(*args, **kwargs) (as shared() would ask for it)."""
    try:
        return CACHE.holds(request_key(function, args, kwargs, CACHE))
    except Uncacheable:
        return False


def keep(value: T, function: Callable[..., T], *args, **kwargs) -> T:
    """Keep `value`, computed another way (several requests' results from one forward pass), as the shared result of
    function(*args, **kwargs); a result already kept for that request wins and is returned."""
    try:
        key = request_key(function, args, kwargs, CACHE)
    except Uncacheable:
        return value
    return CACHE.get_or_compute(key, lambda: value)


def shared_here(function: Callable[..., T], *args, **kwargs) -> T:
    """Like shared(), but computed in the calling thread, not queued behind other sessions' forward passes: for
    light work on a shared result, such as encoding a batch's grid as the JPEG every session is sent."""
    try:
        key = request_key(function, args, kwargs, CACHE)
    except Uncacheable:
        return function(*args, **kwargs)
    return CACHE.get_or_compute(key, lambda: function(*args, **kwargs))
