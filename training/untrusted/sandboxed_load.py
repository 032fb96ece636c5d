"""Read an untrusted file's tensors in a child process with a time and a memory limit, so that a file built to
stall or exhaust the reader costs one refusal, not the server.

pickle_scan refuses the tricks we know before torch.load sees a file, but torch.load(weights_only=True) is no
sandbox, and the next trick would freeze or kill the process that reads it: in the app, that is every student's
session. (One the scan lets by: 40,000 dictionary keys with equal hashes cost half a minute of comparisons in one
C call that holds the interpreter's lock.) Here the reading runs in a forked child with RLIMIT_AS and RLIMIT_CPU
set, the caller waits with a deadline and kills it when the deadline passes, and only tensors come back, as a
JSON header and raw bytes: nothing the child sends is unpickled.

Children are forked from a helper process that imported torch once and runs no threads, so a child starts in a
few milliseconds (a fresh interpreter would spend seconds importing torch) and inherits no lock held by another
thread (forking the server itself would: Streamlit's and torch's threads). The helper starts at the first read
and exits when idle for IDLE_EXIT_S, giving back the memory torch's import holds. Where the platform cannot fork
or pass file descriptors (Windows), the reader runs in this process, behind pickle_scan only.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from training.errors import LatentExplorerError

# A tutorial netG (14 MB) reads in about 0.1 s and a 180 MB checkpoint in about 1 s; the limits leave a wide margin.
BASE_SECONDS = 10.0
SECONDS_PER_MB = 0.1
BASE_MEMORY = 512 << 20
MEMORY_PER_FILE_BYTE = 3  # measured: a 14 MB netG needs 16 MB above the helper, a 183 MB file 184 MB
PARALLEL_READS = 2  # children at once; a class uploading together waits in turn instead of filling the memory
IDLE_EXIT_S = 600.0
HELPER_START_S = 180.0  # importing torch on a busy 2-core machine takes up to about 6 s
_ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
_TENSORS, _REFUSED, _NO_MEMORY, _FAILED = b"T", b"E", b"M", b"X"  # the first byte of a child's reply


def time_limit(file_bytes: int) -> float:
    return BASE_SECONDS + SECONDS_PER_MB * file_bytes / 2**20


def memory_limit(file_bytes: int) -> int:
    return BASE_MEMORY + MEMORY_PER_FILE_BYTE * file_bytes


def isolation_available() -> bool:
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and sys.platform != "win32"


# --- in the child -----------------------------------------------------------------------------------------------

def _reply_with_tensors(tensors: dict[str, torch.Tensor], label: str) -> list:
    """A header naming each tensor's dtype and shape, in order, then their bytes as they lie in memory: the app
    reads them straight into tensors of its own, and nothing is unpickled."""
    header, data = [], []
    for name, tensor in tensors.items():
        if tensor.layout != torch.strided or tensor.is_quantized:
            raise LatentExplorerError(f"{label}: {name[:80]} is a sparse or quantized tensor, which a generator's "
                                      "weights never are")
        tensor = tensor.detach().resolve_conj().resolve_neg().contiguous()
        header.append([name, str(tensor.dtype).removeprefix("torch."), list(tensor.shape)])
        data.append(tensor.reshape(-1).view(torch.uint8).numpy())
    encoded = json.dumps(header).encode()
    return [_TENSORS, len(encoded).to_bytes(8, "little"), encoded, *data]


def _write_all(fd: int, parts: list) -> None:
    for part in parts:
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view):]


def _set_limit(kind: int, soft: int, hard: int) -> None:
    import resource

    ceiling = resource.getrlimit(kind)[1]
    if ceiling != resource.RLIM_INFINITY:
        soft, hard = min(soft, ceiling), min(hard, ceiling)
    resource.setrlimit(kind, (soft, hard))


def _run_child(request: dict, reply: int) -> None:
    """Set the limits, run the reader, write one reply and leave without running the helper's cleanup."""
    import resource

    try:  # the address space torch's libraries already map, plus the allowance
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _set_limit(resource.RLIMIT_AS, mapped + request["memory"], mapped + request["memory"])
    except (OSError, ValueError):  # no /proc (macOS), or a limit the system refuses: the time limit still applies
        pass
    _set_limit(resource.RLIMIT_CPU, request["cpu_seconds"], request["cpu_seconds"] + 1)
    torch.set_num_threads(1)
    try:
        module, name = request["reader"].split(":")
        tensors = getattr(importlib.import_module(module), name)(request["path"], request["label"])
        parts = _reply_with_tensors(tensors, request["label"])
    except LatentExplorerError as exc:
        parts = [_REFUSED, str(exc)[:2000].encode()]
    except MemoryError:
        parts = [_NO_MEMORY]
    except Exception as exc:  # noqa: BLE001 - whatever it was goes back as its type's name
        parts = [_NO_MEMORY] if "allocate" in str(exc)[:500] else [_FAILED, type(exc).__name__.encode()]
    try:
        _write_all(reply, parts)
    finally:
        os._exit(0)


def serve(preload: str = "") -> None:
    """The helper's loop: for each request on stdin (a socket), fork a child that reads the file and writes to the
    file descriptor sent with the request; answer with the child's pid. Exits when the app closes the socket or
    sends nothing for IDLE_EXIT_S."""
    if preload:
        importlib.import_module(preload)  # once here, not in every child
    control = socket.socket(fileno=0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    while _wait_readable(control.fileno(), IDLE_EXIT_S):
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, 1)
        if not message or not fds:
            return
        pid = os.fork()
        if pid == 0:
            control.close()
            _run_child(json.loads(message), fds[0])
        os.close(fds[0])
        control.sendall(pid.to_bytes(8, "little"))


# --- in the app -------------------------------------------------------------------------------------------------

class _Helper:
    """The helper process and our end of its socket."""

    def __init__(self, preload: str):
        ours, theirs = socket.socketpair()
        command = (f"import sys; sys.path[:] = {sys.path!r}; "  # it imports what this process imports
                   f"from training.untrusted.sandboxed_load import serve; serve({preload!r})")
        self.process = subprocess.Popen([sys.executable, "-c", command], stdin=theirs, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, env={**os.environ, **_ONE_THREAD})
        theirs.close()
        self.control = ours
        self.control.settimeout(HELPER_START_S)

    def fork(self, request: dict, reply: int) -> int:
        socket.send_fds(self.control, [json.dumps(request).encode()], [reply])
        answer = self.control.recv(8)
        if len(answer) != 8:
            raise ConnectionError("it exited")
        return int.from_bytes(answer, "little")

    def close(self) -> None:
        self.control.close()
        self.process.kill()  # one that has not answered in HELPER_START_S will not
        self.process.wait()


_HELPER: _Helper | None = None
_HELPER_LOCK = threading.Lock()
_SLOTS = threading.BoundedSemaphore(PARALLEL_READS)


def _start_child(request: dict, reply: int, label: str) -> int:
    global _HELPER
    with _HELPER_LOCK:
        for attempt in range(2):  # the helper may have just exited, idle
            if _HELPER is None:
                _HELPER = _Helper(request["reader"].split(":")[0])
            try:
                return _HELPER.fork(request, reply)
            except OSError as exc:  # BrokenPipe, ConnectionError, a timeout: the helper is gone or never started
                _HELPER.close()
                _HELPER = None
                if attempt:
                    raise LatentExplorerError(f"{label}: not read, because the process that reads files in a "
                                              f"sandbox did not start ({exc})") from None
    raise AssertionError("unreachable")


class _Late(Exception):
    pass


class _Ended(Exception):
    pass


def _wait_readable(fd: int, seconds: float) -> bool:
    poller = select.poll()  # not select.select: a server with many connections has descriptors past 1024
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(seconds, 0) * 1000))


def _read_into(fd: int, view: memoryview, deadline: float) -> None:
    while view:
        if not _wait_readable(fd, deadline - time.monotonic()):
            raise _Late
        count = os.readv(fd, [view])
        if not count:
            raise _Ended
        view = view[count:]


def _read_exact(fd: int, count: int, deadline: float) -> bytes:
    buffer = bytearray(count)
    _read_into(fd, memoryview(buffer), deadline)
    return bytes(buffer)


def _read_text(fd: int, deadline: float) -> str:
    """The rest of a reply that is a message, up to the child's exit (the child sends at most 2,000 characters)."""
    text = bytearray()
    while len(text) < 16384:
        if not _wait_readable(fd, deadline - time.monotonic()):
            raise _Late
        chunk = os.read(fd, 16384)
        if not chunk:
            break
        text += chunk
    return text[:16384].decode(errors="replace")


_DTYPES = {str(dtype).removeprefix("torch."): dtype for dtype in vars(torch).values() if isinstance(dtype, torch.dtype)}


def _receive_tensors(fd: int, deadline: float, cap: int) -> dict[str, torch.Tensor]:
    """Read the header, then each tensor's bytes into a tensor allocated here; never more than `cap` bytes."""
    length = int.from_bytes(_read_exact(fd, 8, deadline), "little")
    if length > cap:
        raise _Ended
    tensors, total = {}, 0
    for name, dtype_name, shape in json.loads(_read_exact(fd, length, deadline)):
        dtype = _DTYPES[dtype_name]
        total += math.prod(shape) * dtype.itemsize
        if total > cap:
            raise _Ended
        tensor = torch.empty(shape, dtype=dtype)
        _read_into(fd, memoryview(tensor.reshape(-1).view(torch.uint8).numpy()), deadline)
        tensors[name] = tensor
    return tensors


def _receive(fd: int, seconds: float, cap: int, label: str) -> dict[str, torch.Tensor]:
    """The child's reply: its tensors, or its refusal raised here; _Late or _Ended when it has none."""
    deadline = time.monotonic() + seconds
    kind = _read_exact(fd, 1, deadline)
    if kind == _TENSORS:
        try:
            return _receive_tensors(fd, deadline, cap)
        except (ValueError, KeyError, TypeError, RuntimeError):  # a header that is not ours: the child went wrong
            raise _Ended from None
    if kind == _REFUSED:
        raise LatentExplorerError(_read_text(fd, deadline))
    if kind == _FAILED:
        raise LatentExplorerError(f"{label}: cannot be read as a PyTorch state dict ({_read_text(fd, deadline)[:60]})")
    raise _Ended  # out of memory, or an unknown reply


def read_tensors(reader: Callable[[str, str], dict[str, torch.Tensor]], path: str | Path,
                 label: str) -> dict[str, torch.Tensor]:
    """reader(path, label), a module-level function returning named tensors, run in a limited child process.
    A child that runs out of time or memory, or dies, is one LatentExplorerError naming the file."""
    if not isolation_available():
        return reader(str(path), label)
    size = Path(path).stat().st_size
    seconds, memory = time_limit(size), memory_limit(size)
    request = {"reader": f"{reader.__module__}:{reader.__qualname__}", "path": str(path), "label": label,
               "memory": memory, "cpu_seconds": math.ceil(seconds) + 1}
    with _SLOTS:
        reply, child_end = os.pipe()
        try:
            try:
                pid = _start_child(request, child_end, label)
            finally:
                os.close(child_end)
            try:
                return _receive(reply, seconds, memory, label)
            except _Late:
                # It has not closed its end of the pipe, so it is still running: ours to stop. (A child that sent
                # too much, or garbage, stops at its next write into the pipe we close, or at its CPU limit.)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                raise LatentExplorerError(f"{label}: reading it took more than {seconds:.0f} s, where a state dict of "
                                          "its size takes under a second, so the file is damaged or built to stall "
                                          "the reader, and it was not opened") from None
            except _Ended:
                raise LatentExplorerError(f"{label}: reading it needed more than {memory / 2**20:.0f} MB of memory "
                                          "or stopped the reader, where a state dict needs a few times its size, so "
                                          "the file is damaged or built to exhaust the server, and it was not "
                                          "opened") from None
        finally:
            os.close(reply)
