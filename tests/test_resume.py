"""--resume: a run stopped after a save and continued ends bit-identical to an uninterrupted one (weights, BatchNorm
buffers, history); the training state is one safetensors file the explorer never needs; a resume with other
settings is refused and says what differs."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from training.__main__ import main
from training.bundle import TRAINING_STATE_FILE, WEIGHTS_FILE, load_bundle, load_training_state, save_training_state
from training.errors import LatentExplorerError
from training.loops.batches import EpochBatches
from training.loops.config import TrainConfig
from training.loops.run import Run
from training.loops.trainer import train
from training.models.cgan import CGANConfig
from training.models.dcgan import DCGANConfig
from training.models.infogan import InfoGANConfig
from training.models.vae import VAEConfig

TINY = dict(latent_dim=8, image_size=32, g_width=8, d_width=8)
STEPS = 7


def _model(family, dataset):
    if family == "cgan":
        return CGANConfig.for_dataset(dataset.attributes, **TINY)
    if family == "infogan":
        return InfoGANConfig(**TINY, categorical_codes=[3], continuous_codes=1)
    return VAEConfig(**TINY) if family == "vae" else DCGANConfig(**TINY)


def _options(family, **changes):
    # Label flips draw from their own stream, so the test covers every stream a family uses.
    extra = {} if family == "vae" else {"label_flip": 0.1, "d_every": 2}
    return TrainConfig(**{"steps": STEPS, "batch_size": 16, "snapshot_steps": (0, 5), "checkpoint_every": 100,
                          **extra, **changes})


class Killed(Exception):
    """Stands in for SIGKILL: the run stops without finishing (test_interrupted.py sends real signals)."""


@pytest.fixture
def kill_at(monkeypatch):
    """kill_at(step): the next run dies when it is about to record `step`."""
    original = Run.record

    def arm(step):
        def record(self, at, values):
            if at == step:
                raise Killed
            original(self, at, values)

        monkeypatch.setattr(Run, "record", record)

    yield arm
    monkeypatch.setattr(Run, "record", original)


def assert_same_bundle(a, b):
    wa, wb = load_file(str(a / WEIGHTS_FILE)), load_file(str(b / WEIGHTS_FILE))
    assert sorted(wa) == sorted(wb)
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"tensors differ after resuming: {different[:5]}"
    assert json.loads((a / "history.json").read_text()) == json.loads((b / "history.json").read_text())
    assert {p.name for p in (a / "snapshots").iterdir()} <= {p.name for p in (b / "snapshots").iterdir()}
    assert (a / "snapshots" / "step_000005.png").read_bytes() == (b / "snapshots" / "step_000005.png").read_bytes()


@pytest.mark.parametrize("family,saved", [("dcgan", 4), ("cgan", 3), ("vae", 4), ("infogan", 2)])
def test_resume_equals_an_uninterrupted_run(tiny_faces, tmp_path, kill_at, family, saved):
    # 48 images in batches of 16: a save at step 4 is mid-epoch, at step 3 on an epoch's end (the VAE trains on
    # 43 images: two batches an epoch).
    straight = train(family, tiny_faces, _model(family, tiny_faces), _options(family), tmp_path / "straight",
                     progress=False)
    out = tmp_path / "resumed"
    kill_at(saved + 2)  # dies two steps after the last save: those steps are lost and must be redone the same way
    with pytest.raises(Killed):
        train(family, tiny_faces, _model(family, tiny_faces), _options(family, checkpoint_every=saved), out,
              progress=False)
    assert load_bundle(out).config["step"] == saved and (out / TRAINING_STATE_FILE).exists()
    kill_at(None)
    train(family, tiny_faces, _model(family, tiny_faces), _options(family, checkpoint_every=saved), out,
          progress=False, resume=True)
    assert_same_bundle(straight, out)
    resumed = load_bundle(out)
    assert resumed.config["resumed_at_steps"] == [saved] and resumed.config["step"] == STEPS
    assert not (out / TRAINING_STATE_FILE).exists()  # dropped when the run finishes (shipped bundles stay small)


def _straight_and_short_kept(tiny_faces, tmp_path):
    """A DCGAN trained STEPS steps straight, and the same run stopped after 3 steps with its training state kept:
    (model config, the straight bundle, the short run's folder)."""
    model = _model("dcgan", tiny_faces)
    straight = train("dcgan", tiny_faces, model, _options("dcgan"), tmp_path / "straight", progress=False)
    out = tmp_path / "short"
    train("dcgan", tiny_faces, model, _options("dcgan", steps=3, checkpoint_every=3), out, progress=False,
          keep_training_state=True)
    return model, straight, out


def test_a_finished_run_kept_with_its_state_continues_to_more_steps(tiny_faces, tmp_path):
    model, straight, out = _straight_and_short_kept(tiny_faces, tmp_path)
    tensors, state = load_training_state(out)
    assert state["step"] == 3 and state["history"]["step"] == [1, 2, 3]
    # Adam's moments of both networks and every random stream are in the file, as plain tensors.
    assert {"optimizer.generator.0.exp_avg", "optimizer.discriminator.0.exp_avg_sq", "rng.noise.0", "rng.flip.0",
            "rng.data_epoch_start", "network.generator.main.1.running_mean"} <= set(tensors)
    with pytest.raises(LatentExplorerError, match="already trained 3 steps and --steps is 3"):
        train("dcgan", tiny_faces, model, _options("dcgan", steps=3), out, progress=False, resume=True)
    train("dcgan", tiny_faces, model, _options("dcgan"), out, progress=False, resume=True, keep_training_state=True)
    assert_same_bundle(straight, out)
    assert load_training_state(out)[1]["step"] == STEPS


def test_load_bundle_ignores_the_training_state(tiny_faces, tmp_path):
    out = train("dcgan", tiny_faces, _model("dcgan", tiny_faces), _options("dcgan", steps=2), tmp_path / "b",
                progress=False, keep_training_state=True)
    state_size = (out / TRAINING_STATE_FILE).stat().st_size
    weights_size = (out / WEIGHTS_FILE).stat().st_size
    # The weights, plus Adam's two moments per parameter, plus a few kB of random-stream states and JSON.
    assert 2.5 * weights_size < state_size < 3 * weights_size + 200_000
    bundle = load_bundle(out)
    assert set(bundle.networks) == {"generator"} and bundle.generator(torch.zeros(2, 8)).shape == (2, 3, 32, 32)
    (out / TRAINING_STATE_FILE).write_bytes(b"not a safetensors file")  # damaged: the explorer still loads it
    assert load_bundle(out).config["step"] == 2
    with pytest.raises(LatentExplorerError, match="training state is truncated or corrupt"):
        load_training_state(out)


@pytest.mark.parametrize("change,expected", [
    ({"train": {"lr_g": 1e-4}}, "training.lr_g: 0.0002 recorded, 0.0001 asked for"),
    ({"train": {"seed": 5}}, "training.seed: 0 recorded, 5 asked for"),
    ({"train": {"batch_size": 8}}, "training.batch_size: 16 recorded, 8 asked for"),
    ({"model": {"g_width": 4}}, "model.g_width: 8 recorded, 4 asked for"),
    ({"data": 40}, "dataset.num_images: 48 recorded, 40 asked for"),
])
def test_resume_refuses_other_settings_and_says_what_differs(tiny_faces, tmp_path, kill_at, change, expected):
    out = tmp_path / "b"
    kill_at(4)
    with pytest.raises(Killed):
        train("dcgan", tiny_faces, _model("dcgan", tiny_faces), _options("dcgan", checkpoint_every=2), out,
              progress=False)
    kill_at(None)
    model = DCGANConfig(**{**TINY, **change.get("model", {})})
    dataset = tiny_faces.subset(np.arange(change["data"])) if "data" in change else tiny_faces
    with pytest.raises(LatentExplorerError) as info:
        train("dcgan", dataset, model, _options("dcgan", checkpoint_every=2, **change.get("train", {})), out,
              progress=False, resume=True)
    message = str(info.value)
    assert "trained with other settings" in message and expected in message
    # Only the lengths and outputs may change: more steps, other checkpoints and snapshots are fine.
    train("dcgan", tiny_faces, _model("dcgan", tiny_faces),
          _options("dcgan", steps=9, checkpoint_every=5, snapshot_steps=(0, 8)), out, progress=False, resume=True)
    assert load_bundle(out).history["step"] == list(range(1, 10))


def test_resume_without_a_training_state(tiny_faces, tmp_path):
    model, options = _model("dcgan", tiny_faces), _options("dcgan", steps=2)
    # Killed before its first save: nothing to continue, so the run starts from step 0.
    fresh = train("dcgan", tiny_faces, model, options, tmp_path / "new", progress=False, resume=True)
    assert load_bundle(fresh).history["step"] == [1, 2]
    # A finished run whose state was dropped cannot be continued exactly, and the message says how to keep it.
    with pytest.raises(LatentExplorerError, match="no training_state.safetensors.*--keep-training-state"):
        train("dcgan", tiny_faces, model, _options("dcgan", steps=4), fresh, progress=False, resume=True)


def test_a_fresh_run_removes_a_stale_training_state(tiny_faces, tmp_path, kill_at):
    out = tmp_path / "b"
    kill_at(3)
    with pytest.raises(Killed):
        train("dcgan", tiny_faces, _model("dcgan", tiny_faces), _options("dcgan", checkpoint_every=2), out,
              progress=False)
    kill_at(1)  # a new run (no --resume) into the same folder, killed before it saves anything
    with pytest.raises(Killed):
        train("dcgan", tiny_faces, _model("dcgan", tiny_faces), _options("dcgan"), out, progress=False)
    assert not (out / TRAINING_STATE_FILE).exists()  # the old run's state would otherwise be resumed into it


def test_epoch_batches_restore_continues_the_same_sequence():
    straight = EpochBatches(10, 3, torch.Generator().manual_seed(1))
    expected = [next(straight).tolist() for _ in range(8)]  # 3 batches an epoch, drop_last
    for taken in range(8):
        stream = EpochBatches(10, 3, torch.Generator().manual_seed(1))
        for _ in range(taken):
            next(stream)
        state = stream.state()
        again = EpochBatches(10, 3, torch.Generator().manual_seed(99))
        again.restore(*state)
        assert [next(again).tolist() for _ in range(8 - taken)] == expected[taken:]


def test_cli_resume_flag(tmp_path, capsys):
    flags = ["train", "--num-images", "40", "--image-size", "32", "--batch-size", "8", "--g-width", "8",
             "--d-width", "8", "--latent-dim", "8", "--snapshot-steps", "0", "--out", str(tmp_path / "b")]
    assert main([*flags, "--steps", "2", "--keep-training-state"]) == 0
    assert main([*flags, "--steps", "3", "--resume", "--lr", "1e-3"]) == 2
    assert "training.lr_d: 0.0002 recorded, 0.001 asked for" in capsys.readouterr().err
    assert main([*flags, "--steps", "3", "--resume"]) == 0
    bundle = load_bundle(tmp_path / "b")
    assert bundle.history["step"] == [1, 2, 3] and bundle.config["resumed_at_steps"] == [2]


def test_a_run_saved_before_an_option_existed_resumes_as_running_without_it(tiny_faces, tmp_path):
    from training.loops.config import ADDED_FIELDS

    model, straight, out = _straight_and_short_kept(tiny_faces, tmp_path)
    # The state as a version without the options of ADDED_FIELDS wrote it.
    tensors, state = load_training_state(out)
    for name in ADDED_FIELDS:
        del state["config"]["training"][name]
    save_training_state(out, tensors, state)
    train("dcgan", tiny_faces, model, _options("dcgan"), out, progress=False, resume=True)
    assert_same_bundle(straight, out)
