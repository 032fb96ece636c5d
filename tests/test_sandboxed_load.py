"""The limited child that reads untrusted files: tensors come back exactly; a reader that stalls, allocates without
end or crashes costs one LatentExplorerError, and the process that asked keeps running meanwhile."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import zipfile

import pytest
import torch

from training.errors import LatentExplorerError
from training.untrusted import sandboxed_load
from training.untrusted.importers import load_state_dict
from training.untrusted.sandboxed_load import read_tensors

pytestmark = pytest.mark.skipif(not sandboxed_load.isolation_available(), reason="needs fork and fd passing")


# Readers run in the child, which imports this module by name: they must be module-level functions.
def many_kinds(path: str, label: str) -> dict[str, torch.Tensor]:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {"float": base, "transposed": base.t(), "shares float's memory": base[1], "bf16": base.bfloat16(),
            "half": base.half(), "int64": torch.arange(5), "bool": torch.tensor([True, False]),
            "complex": torch.tensor([1 + 2j, 3 - 1j]), "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 3),
            "parameter": torch.nn.Parameter(torch.ones(2)), "unicode név ✓": torch.ones(1)}


def sleeps(path: str, label: str) -> dict[str, torch.Tensor]:
    time.sleep(120)
    return {}


def spins(path: str, label: str) -> dict[str, torch.Tensor]:
    while True:
        pass


def allocates(path: str, label: str) -> dict[str, torch.Tensor]:
    return {"huge": torch.ones(64 << 30, dtype=torch.uint8)}


def crashes(path: str, label: str) -> dict[str, torch.Tensor]:
    os.kill(os.getpid(), signal.SIGSEGV)
    return {}


def refuses(path: str, label: str) -> dict[str, torch.Tensor]:
    raise LatentExplorerError(f"{label}: refused in the child")


def fails(path: str, label: str) -> dict[str, torch.Tensor]:
    raise KeyError("no such entry in the child")


@pytest.fixture
def any_file(tmp_path):
    path = tmp_path / "netG.pth"
    path.write_bytes(b"x" * 100)
    return path


@pytest.fixture
def short_limits(monkeypatch):
    monkeypatch.setattr(sandboxed_load, "BASE_SECONDS", 2.0)
    monkeypatch.setattr(sandboxed_load, "BASE_MEMORY", 256 << 20)


def test_tensors_come_back_exactly_in_their_order(any_file):
    got = read_tensors(many_kinds, any_file, "netG.pth")
    expected = many_kinds("", "")
    assert list(got) == list(expected)
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype and got[name].shape == tensor.shape, name
        assert torch.equal(got[name], tensor.detach()), name


@pytest.mark.parametrize("reader,message", [
    (sleeps, "netG.pth: reading it took more than 2 s"),
    (spins, "netG.pth: reading it took more than 2 s"),
    (allocates, "netG.pth: reading it needed more than 256 MB of memory"),
    (crashes, "netG.pth: reading it needed more than 256 MB of memory or stopped the reader"),
    (refuses, "netG.pth: refused in the child"),
    (fails, "netG.pth: cannot be read as a PyTorch state dict (KeyError)"),
])
def test_a_reader_that_goes_wrong_is_one_sentence(any_file, short_limits, reader, message):
    start = time.perf_counter()
    with pytest.raises(LatentExplorerError) as info:
        read_tensors(reader, any_file, "netG.pth")
    assert str(info.value).startswith(message), str(info.value)
    assert time.perf_counter() - start < 30  # the helper may have to start first: a few seconds of importing torch


def colliding_int_keys(count: int) -> bytes:
    """{k: None for k in keys} where every key has the same hash (k = 1 + i * (2**61 - 1)): each insertion compares
    with every key before it, in C, holding the interpreter's lock. No nesting, no sharing: the scan lets it by."""
    out = bytearray(b"\x80\x02}(")
    for i in range(count):
        key = 1 + i * (2**61 - 1)
        raw = key.to_bytes((key.bit_length() + 8) // 8, "little", signed=True)
        out += b"\x8a" + bytes([len(raw)]) + raw + b"N"  # LONG1 key, NONE
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", bytes(out + b"u."))
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def test_a_trick_the_scan_does_not_know_stalls_only_the_child(tmp_path, short_limits):
    """40,000 colliding keys: about half a minute of hashing in one C call. In the child it is one refusal after
    the time limit, and this process runs on: the longest pause of a thread ticking meanwhile stays short."""
    good = tmp_path / "good.pth"
    torch.save({"main.0.weight": torch.ones(2)}, good)
    load_state_dict(good)  # the helper is running before the clock starts
    hostile = tmp_path / "netG.pth"
    hostile.write_bytes(colliding_int_keys(40_000))
    pauses, done = [], threading.Event()

    def tick():
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.01)
            now = time.perf_counter()
            pauses.append(now - last)
            last = now

    ticker = threading.Thread(target=tick)
    ticker.start()
    start = time.perf_counter()
    try:
        with pytest.raises(LatentExplorerError, match="netG.pth: reading it took more than 2 s"):
            load_state_dict(hostile)
    finally:
        done.set()
        ticker.join()
    assert time.perf_counter() - start < 15
    assert max(pauses) < 1.0, max(pauses)  # the scan's own Python loop yields the lock; hashing in C would not
    assert torch.equal(load_state_dict(good)["main.0.weight"], torch.ones(2))  # and the next file reads fine


def test_a_helper_that_died_is_started_again(any_file):
    read_tensors(many_kinds, any_file, "netG.pth")
    sandboxed_load._HELPER.process.kill()
    sandboxed_load._HELPER.process.wait()
    assert list(read_tensors(many_kinds, any_file, "netG.pth")) == list(many_kinds("", ""))


def test_reads_from_many_threads_at_once(any_file):
    results, errors = [], []

    def read():
        try:
            results.append(read_tensors(many_kinds, any_file, "netG.pth"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 6


def test_where_the_platform_cannot_fork_the_reader_runs_here(any_file, monkeypatch):
    monkeypatch.setattr(sandboxed_load, "isolation_available", lambda: False)
    monkeypatch.setattr(sandboxed_load, "_start_child", None)  # would fail if reached
    assert list(read_tensors(many_kinds, any_file, "netG.pth")) == list(many_kinds("", ""))
