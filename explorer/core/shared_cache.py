"""Work shared by every session of the server: a bounded, thread-safe LRU of results, each computed once.

When a teacher says "now everyone click N(-10,1)", thirty sessions ask for the same batch. The first one computes
it; the others wait for that computation (single flight) and get the same object. Results are kept, most recently
used last, until their total size passes a byte cap (`LATENT_EXPLORER_SHARED_CACHE_MB`, default 128 MB); then the
least recently used go. A failed computation reaches every waiter and is not kept.

Pure Python (no Streamlit): the torch worker's `shared()` is the one place pages use it (explorer/core/torch_worker.py).
Results are shared objects: a caller must never modify one in place.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from explorer.logic.recognition import FeatureNetwork
from training.bundle import Bundle

T = TypeVar("T")

CAP_ENV = "LATENT_EXPLORER_SHARED_CACHE_MB"
DEFAULT_CAP_MB = 128  # about 40 batches of 64 samples of a 64x64 model with their prior batches
# What an object of unknown size is counted as: keeps a cache of many tiny results bounded too.
SMALL_OBJECT_BYTES = 64


# Types whose objects are what a bundle folder holds (their `path`): the same files make the same object.
FOLDER_BACKED: set[type] = {Bundle, FeatureNetwork}


class Uncacheable(TypeError):
    """An argument has no stable identity across sessions (a network, a callback): compute without the cache."""


def cap_bytes_from_env(environ: dict[str, str] | None = None) -> int:
    """The byte cap the server uses: LATENT_EXPLORER_SHARED_CACHE_MB megabytes (0 turns the cache off)."""
    raw = (environ if environ is not None else os.environ).get(CAP_ENV, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_CAP_MB
    except ValueError:
        mb = DEFAULT_CAP_MB
    return max(0, int(mb * 2**20))


def size_of(value: Any, _seen: set[int] | None = None) -> int:
    """Bytes a result holds: tensors, arrays, bytes and strings counted exactly, containers and dataclasses
    summed, anything else a small constant. A storage shared by two fields is counted once."""
    seen = set() if _seen is None else _seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        if storage.data_ptr() in seen:
            return SMALL_OBJECT_BYTES
        seen.add(storage.data_ptr())
        return storage.nbytes() + SMALL_OBJECT_BYTES
    if isinstance(value, np.ndarray):
        return value.nbytes + SMALL_OBJECT_BYTES
    if isinstance(value, (bytes, bytearray, str)):
        return len(value) + SMALL_OBJECT_BYTES
    if isinstance(value, dict):
        return SMALL_OBJECT_BYTES + sum(size_of(k, seen) + size_of(v, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return SMALL_OBJECT_BYTES + sum(size_of(v, seen) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return SMALL_OBJECT_BYTES + sum(size_of(getattr(value, f.name), seen) for f in dataclasses.fields(value))
    return SMALL_OBJECT_BYTES


def file_version(path: str | Path) -> tuple:
    """(mtime_ns, size) of a file, or None when it is missing: part of a bundle's version."""
    try:
        stat = Path(path).stat()
    except OSError:
        return (None,)
    return (stat.st_mtime_ns, stat.st_size)


def bundle_version(path: str | Path) -> tuple:
    """A bundle folder's version: its path and the mtime and size of its config and weights, so a retrained or
    replaced bundle at the same path is a different request."""
    folder = Path(path)
    config = file_version(folder / "config.json")
    if config == (None,):
        raise Uncacheable(f"{folder} is not a bundle folder on disk")
    # The path as given, not resolved: resolving it cost more than the rest of a cache hit.
    return ("bundle", str(folder), config, file_version(folder / "weights.safetensors"))


class SharedCache:
    """key -> result, at most `cap_bytes` in total, least recently used evicted first; one computation per key."""

    @dataclasses.dataclass
    class _Flight:
        done: threading.Event = dataclasses.field(default_factory=threading.Event)
        value: Any = None
        error: BaseException | None = None

    def __init__(self, cap_bytes: int):
        self.cap_bytes = int(cap_bytes)
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()  # key -> (value, bytes)
        # id(object) -> (key, field or None): a result, or a tensor field of one, passed back in as an argument.
        self._by_value: dict[int, tuple[Hashable, str | None]] = {}
        self._in_flight: dict[Hashable, SharedCache._Flight] = {}
        self.total_bytes = 0
        self.hits = self.misses = self.joins = self.evictions = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def holds(self, key: Hashable) -> bool:
        """Whether a result for `key` is kept (not counted as a hit or a miss)."""
        with self._lock:
            return key in self._entries

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._entries)

    def key_of_value(self, value: Any) -> Hashable | None:
        """What identifies a result this cache holds, or a tensor field of one (by identity): (key, field name or
        None); None for anything else."""
        with self._lock:
            found = self._by_value.get(id(value))
            if found is None or found[0] not in self._entries:
                return None
            key, name = found
            held = self._entries[key][0]
            if (held if name is None else getattr(held, name, None)) is value:
                return found
            return None

    def _index(self, key: Hashable, value: Any, add: bool) -> None:
        named = [(None, value)]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            named += [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)
                      if isinstance(getattr(value, f.name), (torch.Tensor, np.ndarray))]
        for name, obj in named:
            if add:
                self._by_value[id(obj)] = (key, name)
            elif self._by_value.get(id(obj)) == (key, name):
                del self._by_value[id(obj)]

    def get_or_compute(self, key: Hashable, compute: Callable[[], T], size: Callable[[Any], int] = size_of,
                       wait: Callable[[threading.Event], Any] | None = None) -> T:
        """The result for `key`: from the cache, from the computation already running for it, or from `compute()`
        run here. compute's exception is raised in this thread and in every thread that waited for it. `wait(done)`
        blocks until the event is set (default: done.wait()); a caller passes its own to report progress."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key][0]
            flight = self._in_flight.get(key)
            leader = flight is None
            if leader:
                flight = self._in_flight[key] = SharedCache._Flight()
                self.misses += 1
            else:
                self.joins += 1
        if not leader:
            (wait or threading.Event.wait)(flight.done)
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            value = compute()
        except BaseException as exc:
            flight.error = exc
            with self._lock:
                del self._in_flight[key]
            flight.done.set()
            raise
        flight.value = value
        nbytes = size(value)
        with self._lock:
            del self._in_flight[key]
            if nbytes <= self.cap_bytes:
                self._entries[key] = (value, nbytes)
                self._index(key, value, add=True)
                self.total_bytes += nbytes
                self._evict()
        flight.done.set()
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_value.clear()
            self.total_bytes = 0

    def _evict(self) -> None:
        while self.total_bytes > self.cap_bytes and self._entries:
            key, (value, nbytes) = self._entries.popitem(last=False)
            self._index(key, value, add=False)
            self.total_bytes -= nbytes
            self.evictions += 1


def _function_id(function: Callable) -> tuple:
    if getattr(function, "__self__", None) is not None:  # a bound method: its object is part of the request
        return ("method", _function_id(function.__func__), canonical(function.__self__))
    module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", None)
    if not module or not name or "<lambda>" in name or "<locals>" in name:
        raise Uncacheable(f"{function!r} has no stable name")
    return ("function", module, name)


def canonical(value: Any, cache: SharedCache | None = None) -> Hashable:
    """A hashable description of an argument that two sessions making the same request build alike, whatever the
    objects' identities: bundles by folder and file versions, tensors by their bytes, a result of `cache` by the
    request that made it. Raises Uncacheable for anything else without a stable identity."""
    if cache is not None:
        origin = cache.key_of_value(value)
        if origin is not None:
            return ("result",) + origin
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return (type(value).__name__, value)
    if isinstance(value, enum.Enum):
        return ("enum", type(value).__qualname__, value.name)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(canonical(v, cache) for v in value))
    if isinstance(value, dict):
        items = [(canonical(k, cache), canonical(v, cache)) for k, v in value.items()]
        return ("dict", tuple(sorted(items, key=repr)))
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous().reshape(-1)
        return ("tensor", str(value.dtype), tuple(value.shape), _digest(data.view(torch.uint8).numpy()))
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, _digest(np.ascontiguousarray(value)))
    if isinstance(value, Path):
        return ("path", str(value))
    # A loaded bundle, a network loaded from one, or a reference to one: identified by the files on disk.
    if isinstance(value, tuple(FOLDER_BACKED)):
        return (type(value).__qualname__, bundle_version(value.path))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__module__, type(value).__qualname__,
                tuple((f.name, canonical(getattr(value, f.name), cache)) for f in dataclasses.fields(value)))
    raise Uncacheable(f"no stable identity for a {type(value).__qualname__}")


def _digest(array: np.ndarray) -> str:
    return hashlib.blake2b(memoryview(array.reshape(-1).view(np.uint8)), digest_size=16).hexdigest()


def request_key(function: Callable, args: tuple, kwargs: dict, cache: SharedCache | None = None) -> Hashable:
    """The key of function(*args, **kwargs) as a shared request; Uncacheable when an argument has no stable
    identity."""
    return (_function_id(function), canonical(tuple(args), cache),
            canonical({k: kwargs[k] for k in sorted(kwargs)}, cache))
