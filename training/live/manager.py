"""The server's side of live runs: how many train at once (the rest queue), each in a process of its own, kept
alive by a heartbeat while the browser session that started it lives, ended and reaped when it stops, its session
goes away, its time limit passes, or the server exits. No Streamlit here: the page hands in `alive`, a function that
says whether its session is still open.

Settings (environment variables of the server):
  LATENT_EXPLORER_LIVE_RUNS       runs that train at once (default 1; the others wait in a queue)
  LATENT_EXPLORER_LIVE_THREADS    torch threads of each run (default 1, so sliders in other tabs stay quick)
  LATENT_EXPLORER_LIVE_MINUTES    a run's time limit; it is then saved and ends (default 15)
  LATENT_EXPLORER_LIVE_HEARTBEAT  seconds a run outlives its closed tab or a dead server (default 20)
  LATENT_EXPLORER_RUNS            the server's runs folder (default runs/live in the repository): the page saves
                                  kept runs there, each in a folder the server names, and every page lists them
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from training.bundle import paths as bundle_paths
from training.errors import LatentExplorerError
from training.live import protocol
from training.live.settings import LiveSettings

REPO_ROOT = bundle_paths.REPO_ROOT
LIMIT_VARIABLE, THREADS_VARIABLE, MINUTES_VARIABLE, HEARTBEAT_VARIABLE, RUNS_VARIABLE = (
    "LATENT_EXPLORER_LIVE_RUNS", "LATENT_EXPLORER_LIVE_THREADS", "LATENT_EXPLORER_LIVE_MINUTES",
    "LATENT_EXPLORER_LIVE_HEARTBEAT", "LATENT_EXPLORER_RUNS")
DEFAULTS = {LIMIT_VARIABLE: 1, THREADS_VARIABLE: 1, MINUTES_VARIABLE: 15, HEARTBEAT_VARIABLE: 20}
DEFAULT_RUNS_FOLDER = REPO_ROOT / "runs" / "live"
NAME_LENGTH = 40  # characters of a run's display name a visitor may choose
TICK = 0.25  # seconds between the watchdog's rounds
BEAT_EVERY = 1.0  # seconds between heartbeats of a watched run
STOP_WAIT = 120.0  # seconds a stop may take to save (a VAE also encodes its held-out images)
KILL_WAIT = 5.0  # seconds between SIGTERM to the process group and SIGKILL


def setting(name: str) -> float:
    """A positive number from the environment, or its default."""
    text = os.environ.get(name, "").strip()
    if not text:
        return DEFAULTS[name]
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise LatentExplorerError(f"{name} must be a positive number, got {text!r}")
    return value


def runs_folder_setting() -> Path | None:
    text = os.environ.get(RUNS_VARIABLE, "").strip()
    return Path(text).expanduser() if text else None


def runs_folder() -> Path:
    """Where the page saves the runs a visitor keeps: the server's setting, never a path a visitor typed (a
    visitor's path let anyone make the server write, and walk on every page, any folder it may reach)."""
    return runs_folder_setting() or DEFAULT_RUNS_FOLDER


def display_name(text: str) -> str:
    """A visitor's name for a run, kept to letters, digits, spaces and plain punctuation (no Markdown, no
    control characters, no path) and NAME_LENGTH characters; "" when nothing is left."""
    kept = "".join(c if c.isalnum() or c in " -.,()'" else " " for c in str(text)[:10 * NAME_LENGTH])
    return " ".join(kept.split())[:NAME_LENGTH].strip()


@dataclass
class LiveRun:
    """One run a session asked for: queued (process None), training, or ended (exit_code set)."""

    owner: str
    settings: LiveSettings
    folder: Path
    out: Path
    keep: bool  # saved into a runs folder: an abandoned run is saved too
    alive: Callable[[], bool]
    label: str = ""  # the display name's middle part: the visitor's name for the run, or its settings' title
    process: subprocess.Popen | None = None
    seq: int = 0
    exit_code: int | None = None
    last_alive: float = field(default_factory=time.time)
    last_beat: float = 0.0
    ending: bool = False  # stop or abandon sent

    @property
    def ended(self) -> bool:
        return self.exit_code is not None

    @property
    def name(self) -> str:
        """Its bundle's display name, "live · <the visitor's name, or the settings' title> · <time>": the prefix
        keeps a visitor from naming a run like a shipped model, which every sidebar would then open instead."""
        return f"live · {self.label} · {self.out.name.rsplit('-', 1)[-1]}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"


class LiveRuns:
    """All live runs of this server. Thread-safe: pages call it from their script threads, and one watchdog thread
    starts the processes (the kernel's parent-death signal follows the thread that started a child, so it must be
    one that lives as long as the server), beats the hearts and reaps what ended."""

    def __init__(self, limit: int | None = None, threads: int | None = None, time_limit: float | None = None,
                 heartbeat_timeout: float | None = None, root: Path | None = None):
        self.limit = int(limit or setting(LIMIT_VARIABLE))
        self.threads = int(threads or setting(THREADS_VARIABLE))
        self.time_limit = float(time_limit or 60 * setting(MINUTES_VARIABLE))
        self.heartbeat_timeout = float(heartbeat_timeout or setting(HEARTBEAT_VARIABLE))
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="latent-explorer-live-"))
        self.owns_root = root is None
        self.runs: dict[str, LiveRun] = {}
        self.queue: list[str] = []
        self.saved_to: set[Path] = set()  # runs folders bundles were saved into (listed on every page)
        self.counter = 0
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.closed = False
        self.thread = threading.Thread(target=self._watch, name="latent-explorer-live", daemon=True)
        self.thread.start()

    # -- asking for runs ------------------------------------------------------------------------------------

    def submit(self, owner: str, settings: LiveSettings, alive: Callable[[], bool],
               runs_folder: str | Path | None = None, wait: float = 5.0, name: str = "") -> LiveRun:
        """Queue a run for `owner` (one at a time each); it starts as soon as a slot is free. Saved into
        `runs_folder` when given (a folder the server chose: runs_folder(), a benchmark's --out; never a
        visitor's text), else into this server's temporary folder (gone when the server stops). Either way the
        server names the run's own folder; `name`, cleaned by display_name, goes into its display name only."""
        settings.validate()
        self.forget(owner)  # a run that has ended, or is just ending by itself, makes way
        with self.lock:
            current = self.runs.get(owner)
            if current is not None and not current.ended:
                raise LatentExplorerError("this tab already has a live run; stop it before starting another")
            self.runs.pop(owner, None)
            self.counter += 1
            stamp = time.strftime("%H%M%S")
            folder_name = f"{_slug(settings.title())}-{stamp}"
            keep = runs_folder is not None and str(runs_folder).strip() != ""
            parent = Path(str(runs_folder).strip()).expanduser() if keep else self.root / "bundles"
            run = LiveRun(owner, settings, self.root / "runs" / f"{self.counter:04d}", parent / folder_name, keep,
                          alive, display_name(name) or settings.title())
            self.runs[owner] = run
            self.queue.append(owner)
            self.changed.notify_all()
            deadline = time.time() + wait
            while owner in self.queue and self._free_slots() > 0 and time.time() < deadline:
                self.changed.wait(deadline - time.time())
            return run

    def get(self, owner: str) -> LiveRun | None:
        with self.lock:
            return self.runs.get(owner)

    def position(self, owner: str) -> int | None:
        """0 while training (or ended), k >= 1 for the k-th place in the queue, None without a run."""
        with self.lock:
            if owner in self.queue:
                return self.queue.index(owner) + 1
            return 0 if owner in self.runs else None

    def training(self) -> int:
        with self.lock:
            return sum(1 for r in self.runs.values() if r.process is not None and not r.ended)

    def status(self, owner: str) -> dict | None:
        run = self.get(owner)
        if run is None or run.process is None:
            return None
        try:
            return protocol.read_json_file(run.folder / protocol.STATUS, "live status")
        except LatentExplorerError:
            return None

    def command(self, owner: str, command: str, wait: float = 10.0, **payload) -> dict | None:
        """Send a command to the owner's running run and wait (up to `wait` seconds) until it is carried out;
        returns the status then."""
        with self.lock:
            run = self.runs.get(owner)
            if run is None or run.process is None or run.ended:
                return self.status(owner)
            run.seq += 1
            seq = run.seq
            protocol.send(run.folder, seq, command, **payload)
        deadline = time.time() + wait
        while time.time() < deadline:
            status = self.status(owner)
            if (status and status.get("done_seq", 0) >= seq) or run.ended:
                break
            time.sleep(0.05)
        return self.status(owner)

    def stop(self, owner: str, wait: float = STOP_WAIT) -> dict | None:
        """Stop and save the owner's run (a queued one is just dropped); waits until its process is gone and
        returns its last status. Calling it again, or twice at once, is harmless."""
        with self.lock:
            run = self.runs.get(owner)
            if run is None:
                return None
            if owner in self.queue:
                self.queue.remove(owner)
                self.runs.pop(owner)
                return None
            first = not run.ending
            run.ending = True
            if first and not run.ended:
                run.seq += 1
                protocol.send(run.folder, run.seq, "stop")
        self._wait_or_kill(run, wait)
        status = self.status(owner)
        if status and status.get("bundle") and run.keep:
            with self.lock:
                self.saved_to.add(Path(status["bundle"]).parent)
        return status

    def forget(self, owner: str) -> None:
        """Drop the record of a run that has ended or said it is ending (its bundle stays); waits for its process."""
        run = self.get(owner)
        if run is None:
            return
        if run.process is not None and not run.ended:
            status = self.status(owner) or {}
            if status.get("state") not in protocol.ENDED:
                return  # still training: stop it first
            self._wait_or_kill(run, KILL_WAIT)
        with self.lock:
            if self.runs.get(owner) is run:
                self.runs.pop(owner)
            with contextlib.suppress(ValueError):
                self.queue.remove(owner)

    def shutdown(self) -> None:
        """End every run (the server is stopping): SIGTERM to each process group, then SIGKILL to any left."""
        with self.lock:
            self.closed = True
            self.queue.clear()
            running = [r for r in self.runs.values() if r.process is not None and not r.ended]
            for run in running:
                run.ending = True
                _signal_group(run.process, signal.SIGTERM)
        for run in running:
            self._wait_or_kill(run, KILL_WAIT)
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- the watchdog ---------------------------------------------------------------------------------------

    def _free_slots(self) -> int:
        return self.limit - sum(1 for r in self.runs.values() if r.process is not None and not r.ended)

    def _watch(self) -> None:
        while True:
            with self.lock:
                if self.closed:
                    return
                self._round()
                self.changed.wait(TICK)

    def _round(self) -> None:
        now = time.time()
        for owner, run in list(self.runs.items()):
            watched = _asks(run.alive)
            if watched:
                run.last_alive = now
            if owner in self.queue:
                if now - run.last_alive > self.heartbeat_timeout:  # the tab that waited is gone
                    self.queue.remove(owner)
                    self.runs.pop(owner)
                continue
            if run.process is None or run.ended:
                continue
            code = run.process.poll()
            if code is not None:
                run.exit_code = code
                self.changed.notify_all()
            elif watched and now - run.last_beat >= BEAT_EVERY:
                with contextlib.suppress(OSError):
                    protocol.beat(run.folder)
                run.last_beat = now
            elif not watched and not run.ending and now - run.last_alive > self.heartbeat_timeout:
                run.ending = True
                run.seq += 1
                protocol.send(run.folder, run.seq, "abandon")
        while self.queue and self._free_slots() > 0:
            self._start(self.runs[self.queue.pop(0)])
            self.changed.notify_all()

    def _start(self, run: LiveRun) -> None:
        protocol.write_request(run.folder, {
            "settings": run.settings.to_json(), "out": str(run.out), "keep_if_abandoned": run.keep,
            "parent_pid": os.getpid(), "heartbeat_timeout": self.heartbeat_timeout, "time_limit": self.time_limit,
            "threads": self.threads, "name": run.name,
        })
        run.last_beat = time.time()
        threads = str(self.threads)
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
        with open(run.folder / "worker.log", "ab") as log:
            run.process = subprocess.Popen(
                [sys.executable, "-m", "training.live.worker", str(run.folder)], cwd=REPO_ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_or_kill(self, run: LiveRun, wait: float) -> None:
        process = run.process
        if process is None:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=KILL_WAIT)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)  # the whole group: data-loading helpers too
                process.wait()
        with self.lock:
            run.exit_code = process.returncode
            self.changed.notify_all()


def _asks(alive: Callable[[], bool]) -> bool:
    try:
        return bool(alive())
    except Exception:  # a liveness check that fails must not end a run nor the watchdog
        return True


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


_MANAGER: LiveRuns | None = None
_MANAGER_LOCK = threading.Lock()


def manager() -> LiveRuns:
    """This server's live runs (made on first use; every run ends when the server exits)."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = LiveRuns()
            atexit.register(_MANAGER.shutdown)
        return _MANAGER


def runs_folders() -> list[Path]:
    """Folders whose live-run bundles every page lists: $LATENT_EXPLORER_RUNS and those runs were saved into."""
    folders = [runs_folder_setting()] + sorted(_MANAGER.saved_to if _MANAGER is not None else ())
    return list(dict.fromkeys(f for f in folders if f is not None))
