"""The real app server for the harnesses: `streamlit run explorer/app.py`, headless on a free 127.0.0.1 port,
logging to a file; its health, its memory (with its child processes) and the model loads its log records."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from training.bundle import paths as bundle_paths

REPO_ROOT = bundle_paths.REPO_ROOT
APP = REPO_ROOT / "explorer" / "app.py"
HOST = "127.0.0.1"  # the harnesses never leave this machine
LOAD_LOG_LINE = "loaded model bundle"  # written by explorer.core.bundles on every real model load


class ServerError(RuntimeError):
    """The server did not start, or died during the run."""


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float, exited: Callable[[], str]) -> bool:
    """Poll url/_stcore/health until it answers ok (True) or `timeout` seconds pass (False); a process that ends
    first raises ServerError(exited())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(exited())
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as answer:
                if answer.read().strip() == b"ok":
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (psutil when installed, else /proc)."""
    try:
        import psutil

        process = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
    except ImportError:
        pass
    except Exception:  # the process is gone
        return 0
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def stop_process(process: subprocess.Popen, grace: float = 20) -> None:
    """Ask a process to end (SIGTERM), and kill it after `grace` seconds if it has not."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)


@dataclass
class Server:
    """`streamlit run explorer/app.py`, headless, on 127.0.0.1:<port>, logging to a file."""

    port: int
    process: subprocess.Popen
    log: Path

    @staticmethod
    def start(checkpoints: str | None = None, timeout: float = 600, threads: int | None = None) -> Server:
        port = free_port()
        env = dict(os.environ)
        if checkpoints:
            env["LATENT_EXPLORER_CHECKPOINTS"] = str(Path(checkpoints).resolve())
        if threads:  # torch's threads in the server (default: torch's own choice, one per core)
            env["OMP_NUM_THREADS"] = str(threads)
        handle, name = tempfile.mkstemp(prefix="latent-explorer-server-", suffix=".log")
        os.close(handle)
        log = Path(name)
        command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", HOST,
                   "--server.port", str(port), "--server.headless", "true", "--server.fileWatcherType", "none",
                   "--server.runOnSave", "false", "--browser.gatherUsageStats", "false"]
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        server = Server(port, process, log)

        def exited() -> str:
            return f"the server exited with code {process.returncode}:\n{server.log_text()[-2000:]}"

        if wait_until_healthy(server.url, process, timeout, exited):
            return server
        server.stop()
        raise ServerError(f"the server did not answer /_stcore/health within {timeout:.0f} s")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def model_loads(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if LOAD_LOG_LINE in line]

    def stop(self) -> None:
        stop_process(self.process)
        self.log.unlink(missing_ok=True)


class MemorySampler(threading.Thread):
    """The summed resident memory of the servers, every `every` seconds."""

    def __init__(self, pids: list[int], every: float = 0.5):
        super().__init__(daemon=True)
        self.pids, self.every, self.samples = pids, every, []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append(sum(rss_bytes(pid) for pid in self.pids))
            self._stop_event.wait(self.every)

    def stop(self) -> list[int]:
        self._stop_event.set()
        self.join()
        return self.samples


@contextlib.contextmanager
def one_model(bundle: str):
    """A checkpoints folder holding only this bundle (a link to it), so the app opens on it."""
    source = Path(bundle).resolve()
    if not (source / "config.json").is_file():
        raise ServerError(f"{bundle}: not a bundle folder (no config.json)")
    with tempfile.TemporaryDirectory(prefix="latent-explorer-one-model-") as folder:
        (Path(folder) / source.parent.name).mkdir()
        (Path(folder) / source.parent.name / source.name).symlink_to(source, target_is_directory=True)
        yield folder
