"""`python -m training.live.worker RUN_FOLDER`: one live run in a process of its own (started by
training.live.manager), driven through the run folder (training.live.protocol).

It trains while running, obeys the inbox between steps, publishes its status, history and fixed-noise samples about
once a second, and ends in one of three ways: stop or the time limit (the bundle is saved), an error (failed), or
being abandoned: the heartbeat went stale (the tab closed), the server process died, or a signal came. An abandoned
run is saved only when its bundle was going to a runs folder someone can open later; its temporary files go.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from collections import deque
from pathlib import Path

import torch

from training.bundle.atomic import atomic_write_json
from training.errors import LatentExplorerError
from training.live import protocol
from training.live.settings import CONDITIONS, LiveSettings, data_folder
from training.live.trainer import (
    DiscriminatorWon,
    Diverged,
    LiveTrainer,
    free_name,
    partial_folder,
    remove_stale_partials,
)
from training.models import registry

PUBLISH_EVERY = 1.0  # seconds between status updates while training (the page refreshes about once a second)
IDLE_SLEEP = 0.05  # seconds between looks at the inbox while paused
SPEED_WINDOW = 5.0  # seconds of steps that steps/s averages over


class Abandoned(Exception):
    """Raised by the signal handler while the data loads (a long call the loop cannot interrupt otherwise)."""


def die_with_parent() -> None:
    """Linux: ask the kernel to send SIGTERM when the process that started this one dies, even by SIGKILL. (The
    server starts workers from one long-lived thread, whose end is what the kernel watches.)"""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Worker:
    def __init__(self, folder: Path, request: dict):
        self.folder = folder
        self.settings = LiveSettings.from_json(request["settings"])
        self.out = free_name(Path(request["out"]))
        self.keep_if_abandoned = bool(request.get("keep_if_abandoned"))
        self.parent = int(request["parent_pid"])
        self.heartbeat_timeout = float(request["heartbeat_timeout"])
        self.time_limit = float(request["time_limit"])
        self.name = str(request.get("name") or self.settings.title())
        self.trainer: LiveTrainer | None = None
        self.state, self.message, self.event, self.bundle = "loading", "", None, None
        self.done_seq = 0
        self.started = time.time()
        self.step_times: deque[float] = deque()
        self.signalled = False
        self.last_publish = 0.0
        self.published_step: int | None = None  # the step whose samples and history are on disk

    # -- leaving --------------------------------------------------------------------------------------------

    def on_signal(self, signum, frame) -> None:
        self.signalled = True
        if self.state == "loading":
            raise Abandoned()

    def gone(self) -> str | None:
        """Why nobody is watching any more, or None."""
        if self.signalled:
            return "the server asked this run to end"
        if os.getppid() != self.parent:
            return "the server stopped"
        if protocol.heartbeat_age(self.folder) > self.heartbeat_timeout:
            return f"nobody watched it for {self.heartbeat_timeout:g} s (the browser tab was closed)"
        return None

    def finish(self, why: str) -> None:
        self.state, self.message = "saving", why
        self.publish(force=True)
        try:
            self.bundle = str(self.trainer.save())
            self.state = "done"
        except LatentExplorerError as exc:
            self.trainer.discard()
            self.state, self.message = "done", f"{why}; nothing was saved: {exc}"
        self.publish(force=True)

    def abandon(self, why: str) -> None:
        if self.trainer is not None and self.keep_if_abandoned and self.trainer.step_count > 0:
            self.bundle = str(self.trainer.save())
        else:
            shutil.rmtree(partial_folder(self.out), ignore_errors=True)
        self.state, self.message = "abandoned", f"the run ended because {why}"
        with contextlib.suppress(OSError):  # the server may have removed the folder already
            self.publish(force=True)

    # -- status ---------------------------------------------------------------------------------------------

    def steps_per_second(self) -> float:
        now = time.time()
        while self.step_times and now - self.step_times[0] > SPEED_WINDOW:
            self.step_times.popleft()
        if len(self.step_times) < 2 or self.state != "running":
            return 0.0
        return (len(self.step_times) - 1) / max(self.step_times[-1] - self.step_times[0], 1e-6)

    def publish(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self.last_publish < PUBLISH_EVERY:
            return
        self.last_publish = now
        trainer = self.trainer
        # Samples and history only when a step was taken since the last write: a paused run's files keep their
        # version, so the page draws its curves once instead of on every status update.
        if trainer is not None and self.state not in protocol.ENDED and trainer.step_count != self.published_step:
            protocol.write_array(self.folder / protocol.SAMPLES, trainer.samples())
            atomic_write_json(self.folder / protocol.HISTORY, trainer.run.history, indent=None)
            self.published_step = trainer.step_count
        atomic_write_json(self.folder / protocol.STATUS, {
            "state": self.state, "step": trainer.step_count if trainer else 0,
            "steps_per_second": round(self.steps_per_second(), 3), "elapsed": round(now - self.started, 1),
            "time_limit": self.time_limit, "message": self.message, "event": self.event,
            "done_seq": self.done_seq, "settings": self.settings.to_json(),
            "changes": trainer.changes if trainer else [], "bundle": self.bundle, "out": str(self.out),
            "name": self.name, "pid": os.getpid(), "updated": now,
        }, indent=None)

    # -- training -------------------------------------------------------------------------------------------

    def load(self) -> None:
        from training.data.registry import load_dataset

        s = self.settings
        path = data_folder(s.dataset, s.data_root)
        attributes = CONDITIONS.get(s.dataset) if registry.capabilities(s.family).conditional else None
        dataset, source = load_dataset(s.dataset, image_size=s.image_size, num_images=s.num_images, seed=s.seed,
                                       path=path, progress=False, attributes=attributes)
        remove_stale_partials(self.out.parent)
        self.trainer = LiveTrainer(s, dataset, source, self.out, self.name)
        protocol.write_array(self.folder / protocol.REAL, self.trainer.real_images)

    def train_one(self) -> None:
        try:
            self.trainer.step()
            self.event = None
        except (Diverged, DiscriminatorWon) as exc:
            self.state, self.message = "paused", str(exc)
            self.event = "diverged" if isinstance(exc, Diverged) else "d_won"
        self.step_times.append(time.time())

    def obey(self, command: dict) -> str | None:
        """Carry out one command; returns "stop" or "abandon" when the run must end."""
        kind = command.get("command")
        if kind in ("stop", "abandon"):
            return kind
        if kind == "run":
            self.state, self.message = "running", ""
        elif kind == "pause":
            self.state = "paused"
        elif kind == "step":
            self.state = "paused"
            self.train_one()
        elif kind == "set":
            try:
                changes = self.trainer.change(**(command.get("knobs") or {}))
                self.settings = self.trainer.settings
                self.message = ("changed " + ", ".join(f"{k} {a} → {b}" for k, (a, b) in changes.items())
                                + f" after step {self.trainer.step_count}") if changes else ""
            except (LatentExplorerError, TypeError) as exc:
                self.message = f"that change was refused: {exc}"
        return None

    def serve(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, self.on_signal)
        try:
            die_with_parent()
            self.publish(force=True)
            self.load()
        except Abandoned:
            self.abandon("the server asked this run to end while its data loaded")
            return
        except (LatentExplorerError, OSError) as exc:
            shutil.rmtree(partial_folder(self.out), ignore_errors=True)
            self.state, self.message = "failed", str(exc)
            self.publish(force=True)
            return
        self.state = "running"
        self.publish(force=True)
        while True:
            why = self.gone()
            if why:
                self.abandon(why)
                return
            if time.time() - self.started > self.time_limit:
                self.finish(f"the time limit of {self.time_limit / 60:g} minutes was reached")
                return
            commands = protocol.take_commands(self.folder)
            for command in commands:
                end = self.obey(command)
                self.done_seq = max(self.done_seq, int(command.get("seq", 0)))
                if end == "stop":
                    self.finish("stopped")
                    return
                if end == "abandon":
                    self.abandon("the browser tab went away")
                    return
            if self.state == "running":
                self.train_one()
            else:
                time.sleep(IDLE_SLEEP)
            self.publish(force=bool(commands))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m training.live.worker RUN_FOLDER", file=sys.stderr)
        return 2
    folder = Path(args[0])
    request = protocol.read_json_file(folder / protocol.REQUEST, "live run request")
    if request is None:
        print(f"{folder}: no {protocol.REQUEST}", file=sys.stderr)
        return 2
    torch.set_num_threads(int(request.get("threads", 1)))
    Worker(folder, request).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
