"""The cache every session shares: its byte cap holds, it evicts the least recently used, identical concurrent
requests are computed once, a failure reaches every waiter and is not kept, and a changed bundle is a new request."""

import os
import threading
import time

import numpy as np
import pytest
import torch

from explorer.core import shared_cache, torch_worker
from explorer.core.shared_cache import SharedCache, Uncacheable, request_key, size_of
from training.latent.priors import LatentDistribution

MB = 2**20


def test_total_bytes_never_pass_the_cap_and_the_least_recently_used_go_first():
    cache = SharedCache(cap_bytes=10 * MB)
    for i in range(25):  # 25 results of about 1 MB each into a 10 MB cache
        cache.get_or_compute(("block", i), lambda: np.zeros(MB, np.uint8))
        assert cache.total_bytes <= cache.cap_bytes
    assert len(cache) < 10 and cache.evictions > 15
    kept = [key[1] for key in cache.keys()]
    assert kept == list(range(25 - len(kept), 25))  # the newest survive, oldest first
    # Using an old entry makes it the most recent: the next insert evicts another one.
    oldest = ("block", kept[0])
    cache.get_or_compute(oldest, lambda: pytest.fail("a kept result was computed again"))
    cache.get_or_compute(("block", 99), lambda: np.zeros(MB, np.uint8))
    assert oldest in cache.keys() and ("block", kept[1]) not in cache.keys()
    assert cache.total_bytes == sum(size_of(np.zeros(MB, np.uint8)) for _ in cache.keys())


def test_a_result_larger_than_the_cap_is_returned_but_not_kept():
    cache = SharedCache(cap_bytes=MB)
    big = cache.get_or_compute("big", lambda: torch.zeros(MB))  # 4 MB
    assert big.shape == (MB,) and len(cache) == 0 and cache.total_bytes == 0


def test_sizes_count_tensors_arrays_and_bytes_inside_containers():
    batch = {"images": torch.zeros(16, 3, 64, 64), "codes": np.zeros((16, 100)), "jpeg": b"x" * 1000}
    assert size_of(batch) >= 16 * 3 * 64 * 64 * 4 + 16 * 100 * 8 + 1000
    view = torch.zeros(1000)
    assert size_of((view, view[:10])) < 1000 * 4 + 1000  # one storage, counted once


def test_identical_concurrent_requests_are_computed_once_and_all_get_the_result():
    cache = SharedCache(cap_bytes=10 * MB)
    calls, started, release = [], threading.Event(), threading.Event()

    def compute():
        calls.append(1)
        started.set()
        release.wait(10)
        return torch.arange(5)

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("same", compute)))
               for _ in range(12)]
    for t in threads:
        t.start()
    assert started.wait(10)
    time.sleep(0.2)  # let the others reach the in-flight computation
    release.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and len(results) == 12
    assert all(r is results[0] for r in results)
    assert cache.misses == 1 and cache.hits + cache.joins == 11


def test_different_keys_do_not_wait_for_each_other():
    cache = SharedCache(cap_bytes=10 * MB)
    release = threading.Event()
    slow = threading.Thread(target=lambda: cache.get_or_compute("slow", lambda: release.wait(10) and "slow"))
    slow.start()
    time.sleep(0.1)
    start = time.monotonic()
    assert cache.get_or_compute("fast", lambda: "fast") == "fast"
    assert time.monotonic() - start < 5  # it did not wait for "slow" to be released
    release.set()
    slow.join(10)
    assert cache.get_or_compute("slow", lambda: "again") == "slow"


def test_an_exception_reaches_every_waiter_and_is_not_cached():
    cache = SharedCache(cap_bytes=10 * MB)
    started, release = threading.Event(), threading.Event()

    def failing():
        started.set()
        release.wait(10)
        raise ValueError("the model broke")

    errors = []

    def ask():
        try:
            cache.get_or_compute("k", failing)
        except ValueError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    assert started.wait(10)
    time.sleep(0.2)
    release.set()
    for t in threads:
        t.join(10)
    assert errors == ["the model broke"] * 6
    assert len(cache) == 0 and cache.total_bytes == 0
    assert cache.get_or_compute("k", lambda: "fixed") == "fixed"  # the next request computes again


def test_request_keys_describe_values_not_objects():
    normal = LatentDistribution.normal(-10.0, 1.0)
    assert request_key(size_of, (normal, 64, 0), {}) == request_key(size_of, (LatentDistribution.normal(-10.0, 1.0),
                                                                              64, 0), {})
    assert request_key(size_of, (normal, 64, 0), {}) != request_key(size_of, (normal, 64, 1), {})
    assert request_key(size_of, (1,), {}) != request_key(size_of, (1.0,), {}) != request_key(size_of, (True,), {})
    z = torch.randn(4, 8)
    assert request_key(size_of, (z,), {}) == request_key(size_of, (z.clone(),), {})
    assert request_key(size_of, (z,), {}) != request_key(size_of, (z + 1,), {})
    assert request_key(size_of, (), {"a": 1, "b": 2}) == request_key(size_of, (), {"b": 2, "a": 1})
    with pytest.raises(Uncacheable):
        request_key(size_of, (torch.nn.Linear(2, 2),), {})
    with pytest.raises(Uncacheable):
        request_key(lambda: 0, (), {})


def test_a_changed_bundle_is_a_new_request(tmp_path):
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "weights.safetensors").write_bytes(b"old weights")
    before = shared_cache.bundle_version(folder)
    assert shared_cache.bundle_version(folder) == before
    (folder / "weights.safetensors").write_bytes(b"new weights, retrained")
    stat = (folder / "weights.safetensors").stat()
    os.utime(folder / "weights.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert shared_cache.bundle_version(folder) != before


def test_shared_work_on_a_real_bundle_is_computed_once_and_misses_when_the_bundle_changes(tiny_bundle, tmp_path):
    import shutil

    from training.bundle import load_bundle
    from training.latent.sampling import sample

    folder = tmp_path / "copy"
    shutil.copytree(tiny_bundle, folder)
    bundle = load_bundle(folder)
    normal = LatentDistribution.normal(-10.0, 1.0)
    first = torch_worker.shared(sample, bundle, normal, 8, 3)
    again = torch_worker.shared(sample, load_bundle(folder), normal, 8, 3)  # another session's copy of the model
    assert again is first
    weights = folder / "weights.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the bundle was rewritten
    assert torch_worker.shared(sample, bundle, normal, 8, 3) is not first
    # A result passed back in is identified by the request that made it, not hashed again.
    key, _ = torch_worker.CACHE.key_of_value(first)
    assert shared_cache.canonical(first, torch_worker.CACHE) == ("result", key, None)
    assert shared_cache.canonical(first.images, torch_worker.CACHE) == ("result", key, "images")
    assert shared_cache.canonical(first.images.clone(), torch_worker.CACHE)[0] == "tensor"
