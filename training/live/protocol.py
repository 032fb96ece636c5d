"""The run folder through which the server and a live worker process talk: plain files, each written atomically.

    request.json     server -> worker, once: the settings, where to save, limits
    inbox/<n>.json   server -> worker: numbered commands (run, pause, step, set, stop, abandon), taken in order
    heartbeat        server -> worker: touched while the browser tab is open; a stale one ends the run
    status.json      worker -> server: state, step, speed, knobs, knob changes, the last command done, errors
    history.json     worker -> server: every step's numbers so far (the bundle's history.json format)
    samples.npy      worker -> server: the fixed-noise samples now, uint8 (N, H, W, C)
    real.npy         worker -> server, once: real training images, the diversity reference of the health line

Files, not pipes: either side may die at any moment, every reader sees a whole file or the previous one, and a test
(or a teacher) can look inside.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np

from training.bundle.atomic import atomic_write_bytes, atomic_write_json
from training.untrusted.checks import read_json

REQUEST, STATUS, HISTORY, SAMPLES, REAL, HEARTBEAT, INBOX = (
    "request.json", "status.json", "history.json", "samples.npy", "real.npy", "heartbeat", "inbox")
COMMANDS = ("run", "pause", "step", "set", "stop", "abandon")
# The worker's states: loading (reading the data, building the networks), running, paused, saving, then one of the
# ends: done (saved), failed (an error; message says what), abandoned (the tab or the server went away).
ENDED = ("done", "failed", "abandoned")


def read_json_file(path: Path, what: str) -> dict | None:
    """A JSON file of the run folder, or None while it does not exist yet."""
    if not path.exists():
        return None
    return read_json(path, what)


def write_request(folder: Path, request: dict) -> None:
    (folder / INBOX).mkdir(parents=True, exist_ok=True)
    beat(folder)
    atomic_write_json(folder / REQUEST, request, indent=None)


def send(folder: Path, seq: int, command: str, **payload) -> None:
    """Command number `seq` (1, 2, ...): the worker takes the inbox in number order."""
    if command not in COMMANDS:
        raise ValueError(f"unknown live command {command!r}")
    atomic_write_json(folder / INBOX / f"{seq:06d}.json", {"seq": seq, "command": command, **payload}, indent=None)


def take_commands(folder: Path) -> list[dict]:
    """The commands waiting in the inbox, oldest first, removed from it."""
    commands = []
    for path in sorted((folder / INBOX).glob("[0-9]*.json")):
        try:
            commands.append(read_json(path, "live command"))
        finally:
            path.unlink(missing_ok=True)
    return commands


def beat(folder: Path) -> None:
    (folder / HEARTBEAT).touch()
    os.utime(folder / HEARTBEAT)


def heartbeat_age(folder: Path) -> float:
    """Seconds since the server last said the run is still watched (infinite once the file is gone)."""
    try:
        return time.time() - (folder / HEARTBEAT).stat().st_mtime
    except OSError:
        return float("inf")


def write_array(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def read_array(path: Path) -> np.ndarray | None:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
