"""Training that is interrupted (issue 9): SIGKILL at random moments never leaves a bundle that does not load, and
--resume still ends with the weights of an uninterrupted run; an output folder that cannot be written, or a disk
too small for the bundle, stops the run before it trains."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.__main__ import main
from training.bundle import (
    CONFIG_FILE,
    TRAINING_STATE_FILE,
    WEIGHTS_FILE,
    load_bundle,
    load_training_state,
    save_training_state,
)
from training.data.registry import load_dataset
from training.errors import LatentExplorerError
from training.loops import disk
from training.loops.config import TrainConfig
from training.loops.trainer import train
from training.models.dcgan import DCGANConfig

REPO = Path(__file__).resolve().parent.parent
TINY = dict(latent_dim=8, image_size=32, g_width=8, d_width=8)
STEPS = 40
CLI = ["train", "--model", "dcgan", "--data", "toyfaces", "--num-images", "40", "--image-size", "32", "--batch-size",
       "8", "--g-width", "8", "--d-width", "8", "--latent-dim", "8", "--snapshot-steps", "0", "--threads", "1"]


def _start(out, *flags):
    command = ["nice", "-n", "19", sys.executable, "-m", "training", *CLI, "--steps", str(STEPS),
               "--checkpoint-every", "1", "--out", str(out), *flags]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _check_after_kill(out):
    """What a reader finds after a kill: no bundle yet, or one that loads with a consistent history."""
    if not (out / CONFIG_FILE).exists():
        return None
    bundle = load_bundle(out, with_training_networks=True)
    steps = bundle.history["step"]
    assert steps == list(range(1, len(steps) + 1))
    if (out / TRAINING_STATE_FILE).exists():
        state = load_training_state(out)[1]
        assert state["history"]["step"] == list(range(1, state["step"] + 1))
    return bundle.config["step"]


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path):
    out = tmp_path / "run"
    rng = random.Random(4)
    saved_at_kill = []
    for attempt in range(4):
        started = time.time()
        process = _start(out, *(["--resume"] if attempt else []))
        if attempt == 0:
            time.sleep(0.3)  # still starting up: nothing written yet
        else:  # wait for this process's first save, then kill it at a random moment (often inside a save)
            state = out / TRAINING_STATE_FILE
            while process.poll() is None and not (state.exists() and state.stat().st_mtime > started):
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.2))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        if process.returncode == 0:
            break  # finished before the kill landed
        assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
        saved_at_kill.append(_check_after_kill(out))
    assert saved_at_kill[0] is None and any(step for step in saved_at_kill[1:]), saved_at_kill
    if (out / TRAINING_STATE_FILE).exists():
        process = _start(out, "--resume")
        assert process.wait(timeout=900) == 0, process.stderr.read().decode()[-2000:]  # a hang guard, not a time limit

    dataset, _ = load_dataset("toyfaces", image_size=32, num_images=40, seed=0)
    straight = train("dcgan", dataset, DCGANConfig(**TINY),
                     TrainConfig(steps=STEPS, batch_size=8, snapshot_steps=(0,), checkpoint_every=1000),
                     tmp_path / "straight", progress=False)
    resumed = load_file(str(out / WEIGHTS_FILE))
    expected = load_file(str(straight / WEIGHTS_FILE))
    assert sorted(resumed) == sorted(expected)
    assert all(torch.equal(resumed[k], expected[k]) for k in expected)
    assert json.loads((out / "history.json").read_text()) == json.loads((straight / "history.json").read_text())
    config = load_bundle(out).config
    assert config["step"] == STEPS and config.get("resumed_at_steps")
    assert not any(p.name.endswith(".tmp") for p in out.rglob("*"))  # leftovers of killed writes were removed
    assert not (out / TRAINING_STATE_FILE).exists()


def test_an_output_path_under_a_file_fails_before_the_data_loads(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    def no_data(*args, **kwargs):
        raise AssertionError("the data should not load when --out cannot be written")

    monkeypatch.setattr("training.data.registry.load_dataset", no_data)
    assert main([*CLI, "--steps", "1", "--out", str(blocker / "bundle")]) == 2
    assert f"cannot create the output folder {blocker / 'bundle'}" in capsys.readouterr().err
    assert main([*CLI, "--steps", "1", "--out", str(blocker)]) == 2  # --out is itself a file
    assert "a file is in the way" in capsys.readouterr().err


def test_the_python_api_checks_the_output_folder_too(tiny_faces, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(LatentExplorerError, match="cannot create the output folder"):
        train("dcgan", tiny_faces, DCGANConfig(**TINY), TrainConfig(steps=1, batch_size=16), blocker / "b",
              progress=False)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders; the path-under-a-file tests cover this case for root")
def test_a_read_only_output_folder_fails_before_the_data_loads(tmp_path, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert main([*CLI, "--steps", "1", "--out", str(folder)]) == 2
        assert f"cannot write in the output folder {folder}" in capsys.readouterr().err
    finally:
        folder.chmod(0o700)


def test_too_little_disk_space_is_refused_with_the_numbers(tiny_faces, tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 50_000, 50_000))
    out = tmp_path / "b"
    with pytest.raises(LatentExplorerError) as info:
        train("dcgan", tiny_faces, DCGANConfig(**TINY), TrainConfig(steps=2, batch_size=16), out, progress=False)
    message = str(info.value)
    assert f"not enough disk space for the bundle in {out}: 0.1 MB free, training needs about" in message
    assert re.search(r"weights 0\.1 MB, training state 0\.\d MB written beside its previous copy", message)
    assert not (out / "snapshots").exists()  # stopped before the first file was written


def test_the_space_estimate_matches_the_files(tiny_faces, tmp_path):
    out = train("dcgan", tiny_faces, DCGANConfig(**TINY), TrainConfig(steps=2, batch_size=16, snapshot_steps=()),
                tmp_path / "b", progress=False, keep_training_state=True)
    need = disk.estimate_save_bytes(load_bundle(out, with_training_networks=True).networks, snapshots=1,
                                      image_size=32, steps=2)
    for key, file in (("weights", WEIGHTS_FILE), ("training_state", TRAINING_STATE_FILE)):
        assert need[key] == pytest.approx((out / file).stat().st_size, rel=0.05)


def test_a_disk_that_fills_up_during_training_names_the_last_good_bundle(tiny_faces, tmp_path, monkeypatch):
    original = save_training_state

    def full_on_step_3(path, tensors, state):
        if state["step"] == 3:
            raise OSError(28, "No space left on device")
        return original(path, tensors, state)

    monkeypatch.setattr("training.loops.run.save_training_state", full_on_step_3)
    out = tmp_path / "b"
    with pytest.raises(LatentExplorerError, match=f"could not write the bundle at step 3 to {out}: No space left on "
                                                  f"device. The last good bundle is {out} \\(step 2\\)"):
        train("dcgan", tiny_faces, DCGANConfig(**TINY), TrainConfig(steps=6, batch_size=16, checkpoint_every=1),
              out, progress=False)
    assert load_bundle(out).config["step"] >= 2
