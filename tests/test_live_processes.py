"""Live runs as the server runs them: a worker process per run, driven through its run folder. Whatever ends a run
(stop, stop twice, the tab going away, the server killed), no process is left behind and no half-written bundle
appears. Tiny networks and 64 toy faces; waits poll with generous deadlines and nothing asserts on time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from training.bundle import find_bundles, load_bundle
from training.live import protocol
from training.live.manager import LiveRuns
from training.live.settings import LiveSettings

REPO = Path(__file__).resolve().parent.parent
TINY = LiveSettings(width=8, batch_size=16, num_images=64, latent_dim=16)
DEADLINE = 180  # seconds any wait may take on a busy machine before the test gives up
pytestmark = pytest.mark.slow  # real worker processes, each training for seconds


def wait_for(condition, what: str, deadline: float = DEADLINE):
    end = time.time() + deadline
    while time.time() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"gave up waiting for {what}")


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: state, ppid, process group, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_gone(pid: int) -> bool:
    """No such process, or only its zombie (ended; waiting for a parent, perhaps a container's init, to reap it)."""
    fields = _stat(pid)
    return fields is None or fields[0] == "Z"


def group_gone(pgid: int) -> bool:
    """No live process left in the worker's process group (data-loading helpers included)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and fields[2] == str(pgid) \
                and fields[0] != "Z":
            return False
    return True


def no_partials(folder: Path) -> bool:
    return not any(p.name.endswith(".partial") for p in folder.glob(".*")) if folder.exists() else True


@pytest.fixture
def runs(tmp_path):
    manager = LiveRuns(limit=1, threads=1, time_limit=600, heartbeat_timeout=5, root=tmp_path / "live")
    yield manager
    manager.shutdown()


def trained(runs: LiveRuns, owner: str, steps: int = 2) -> dict:
    return wait_for(lambda: (s := runs.status(owner)) and s.get("step", 0) >= steps and s, f"{steps} steps")


def test_start_pause_step_change_resume_stop(runs, tmp_path):
    run = runs.submit("tab", TINY, alive=lambda: True)
    trained(runs, "tab")
    paused = runs.command("tab", "pause")
    assert paused["state"] == "paused"
    stepped = runs.command("tab", "step")
    assert stepped["step"] == paused["step"] + 1 and stepped["state"] == "paused"
    changed = runs.command("tab", "set", knobs={"lr_g": 1e-3})
    assert changed["settings"]["lr_g"] == 1e-3 and changed["changes"][0]["step"] == stepped["step"]
    refused = runs.command("tab", "set", knobs={"width": 64})
    assert refused["message"].startswith("that change was refused")
    assert runs.command("tab", "run")["state"] == "running"
    trained(runs, "tab", stepped["step"] + 2)
    final = runs.stop("tab")
    assert final["state"] == "done" and run.ended and process_gone(run.process.pid)
    bundle = load_bundle(final["bundle"])
    assert bundle.config["live"]["knob_changes"][0]["changes"] == {"lr_g": [2e-4, 1e-3]}
    assert len(bundle.history["step"]) == bundle.config["step"] == final["step"]
    assert no_partials(Path(final["bundle"]).parent)


def test_stop_pressed_twice_leaves_one_bundle_and_no_process(runs, tmp_path):
    run = runs.submit("tab", TINY, alive=lambda: True, runs_folder=tmp_path / "runs")
    trained(runs, "tab")
    results = []
    presses = [threading.Thread(target=lambda: results.append(runs.stop("tab"))) for _ in range(2)]
    for press in presses:
        press.start()
    for press in presses:
        press.join()
    results.append(runs.stop("tab"))  # and once more after it ended
    assert len({r["bundle"] for r in results}) == 1 and all(r["state"] == "done" for r in results)
    assert process_gone(run.process.pid) and group_gone(run.process.pid)
    assert [p.name for p in find_bundles(tmp_path / "runs")] == [Path(results[0]["bundle"]).name]
    assert no_partials(tmp_path / "runs")
    load_bundle(results[0]["bundle"])


@pytest.mark.parametrize("keep", [False, True], ids=["temporary", "runs-folder"])
def test_a_closed_tab_ends_its_run(runs, tmp_path, keep):
    watched = {"open": True}
    folder = tmp_path / "runs" if keep else None
    run = runs.submit("tab", TINY, alive=lambda: watched["open"], runs_folder=folder)
    trained(runs, "tab")
    watched["open"] = False  # the browser tab closed: nobody beats the heart any more
    wait_for(lambda: run.ended, "the run to end by itself")
    status = runs.status("tab")
    assert status["state"] == "abandoned" and "browser tab" in status["message"]
    assert process_gone(run.process.pid) and group_gone(run.process.pid)
    if keep:  # a runs folder is kept for later: the run is saved, whole
        assert load_bundle(status["bundle"]).config["step"] == status["step"]
    else:  # a tab-only run has nobody left to open it
        assert status["bundle"] is None and not find_bundles(run.out.parent)
    assert no_partials(run.out.parent)


def test_a_second_run_queues_until_the_first_stops(runs):
    first = runs.submit("first", TINY, alive=lambda: True)
    second = runs.submit("second", TINY, alive=lambda: True, wait=0)
    assert runs.position("first") == 0 and runs.position("second") == 1 and second.process is None
    trained(runs, "first", 1)
    runs.stop("first")
    wait_for(lambda: runs.position("second") == 0 and second.process is not None, "the queued run to start")
    trained(runs, "second", 1)
    runs.stop("second")
    assert process_gone(first.process.pid) and process_gone(second.process.pid)


SERVER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from training.live.manager import LiveRuns
    from training.live.settings import LiveSettings

    runs = LiveRuns(limit=1, heartbeat_timeout=600, root=Path(sys.argv[1]))
    settings = LiveSettings(width=8, batch_size=16, num_images=64, latent_dim=16)
    run = runs.submit("tab", settings, alive=lambda: True, runs_folder=sys.argv[2] or None)
    print(json.dumps({"pid": run.process.pid, "folder": str(run.folder)}), flush=True)
    time.sleep(3600)
""")


@pytest.mark.parametrize("keep", [False, True], ids=["temporary", "runs-folder"])
def test_killing_the_server_mid_run_leaves_no_process(tmp_path, keep):
    runs_folder = tmp_path / "runs" if keep else ""
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path / "live"), str(runs_folder)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        started = json.loads(server.stdout.readline())
        folder, worker = Path(started["folder"]), started["pid"]
        status = wait_for(lambda: (s := protocol.read_json_file(folder / protocol.STATUS, "status"))
                          and s.get("step", 0) >= 2 and s, "the run to train")
        server.send_signal(signal.SIGKILL)  # no atexit, no goodbye: only the worker's own checks can notice
        server.wait()
        wait_for(lambda: process_gone(worker) and group_gone(worker), "the worker to end")
    finally:
        if server.poll() is None:
            server.kill()
    status = protocol.read_json_file(folder / protocol.STATUS, "status")
    assert status["state"] == "abandoned" and "server" in status["message"]
    out = Path(status["out"])
    assert no_partials(out.parent)
    if keep:
        assert load_bundle(status["bundle"]).config["step"] >= 2
    else:
        assert not find_bundles(out.parent)


def test_the_time_limit_ends_and_saves_a_run(tmp_path):
    runs = LiveRuns(limit=1, threads=1, time_limit=15, heartbeat_timeout=30, root=tmp_path / "live")
    try:
        run = runs.submit("tab", TINY, alive=lambda: True)
        wait_for(lambda: run.ended, "the time limit")
        status = runs.status("tab")
        assert status["state"] == "done" and "time limit of 0.25 minutes" in status["message"]
        if status["step"]:  # a machine too busy to take one step in 15 s has nothing to save, and says so
            assert load_bundle(status["bundle"]).config["step"] == status["step"]
        else:
            assert "nothing was saved" in status["message"]
        assert process_gone(run.process.pid) and no_partials(run.out.parent)
    finally:
        runs.shutdown()
