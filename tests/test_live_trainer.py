"""The live trainer in-process: knob changes between steps, the rewind after a blow-up, the guard's verdict, and a
bundle that appears under its name only when it is whole."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from training.bundle import load_bundle
from training.errors import LatentExplorerError
from training.live.settings import LiveSettings, data_folder
from training.live.trainer import (
    OWNER_FILE,
    DiscriminatorWon,
    Diverged,
    LiveTrainer,
    free_name,
    partial_folder,
    remove_stale_partials,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = dict(width=8, batch_size=16, num_images=48, latent_dim=16)
SOURCE = {"name": "toyfaces", "num_images": 48, "seed": 3, "image_size": 32}


def trainer(tiny_faces, tmp_path, family="dcgan", **knobs) -> LiveTrainer:
    settings = LiveSettings(family=family, **TINY, **knobs)
    return LiveTrainer(settings, tiny_faces, SOURCE, tmp_path / family, f"live {family}")


def test_a_paused_gan_takes_new_knobs_and_records_them(tiny_faces, tmp_path):
    live = trainer(tiny_faces, tmp_path, "cgan")
    for _ in range(2):
        live.step()
    changes = live.change(lr_g=1e-3, lr_d=5e-5, d_ratio="1/2", label_smoothing=0.1, class_weight=5.0,
                          noise="U(-1,1)")
    assert changes["lr_g"] == (2e-4, 1e-3) and changes["d_ratio"] == ("1", "1/2")
    assert live.loop.opt_g.param_groups[0]["lr"] == 1e-3 and live.loop.opt_d.param_groups[0]["lr"] == 5e-5
    assert (live.run.config.d_every, live.run.config.label_smoothing, live.loop.game.weight) == (2, 0.1, 5.0)
    assert live.run.fixed_noise.min() >= -1 and live.run.noise.kind == "uniform"
    assert live.change(lr_g=1e-3) == {}  # nothing new: nothing recorded
    with pytest.raises(LatentExplorerError, match="cannot change"):
        live.change(latent_dim=32)
    live.step()
    out = live.save()
    bundle = load_bundle(out)
    assert bundle.config["step"] == 3 and bundle.config["training"]["steps"] == 3
    assert bundle.config["training"]["lr_g"] == 1e-3 and bundle.prior.label == "U(-1, 1)"
    assert bundle.config["live"]["knob_changes"] == [{"step": 2, "changes": {k: list(v) for k, v in changes.items()}}]
    assert 3 in bundle.snapshot_paths() and not partial_folder(out).exists() and not (out / OWNER_FILE).exists()


def test_a_vae_changes_its_learning_rates_and_kl_weight(tiny_faces, tmp_path):
    live = trainer(tiny_faces, tmp_path, "vae")
    live.step()
    live.change(lr_g=1e-3, lr_d=1e-5, kl_weight=0.01)
    groups = live.run.optimizers["adam"].param_groups
    assert (groups[0]["lr"], groups[1]["lr"], live.loop.kl_weight) == (1e-3, 1e-5, 0.01)
    with pytest.raises(LatentExplorerError):
        live.change(noise="U(0,1)")  # a VAE's prior is N(0,1)
    live.step()
    assert load_bundle(live.save()).latents() is not None


def test_a_blown_up_step_rewinds_to_the_last_good_weights(tiny_faces, tmp_path, monkeypatch):
    live = trainer(tiny_faces, tmp_path)
    for _ in range(3):
        live.step()
    live._keep_good_copy()
    kept = {k: v.clone() for k, v in live.generator.state_dict().items()}
    live.step()
    original = type(live.loop).__call__  # the real step runs (and its NaN reaches the weights), then says NaN
    monkeypatch.setattr(type(live.loop), "__call__", lambda self, step: {**original(self, step), "loss_g": math.nan})
    with pytest.raises(Diverged, match="rewound to step 3"):
        live.step()
    assert live.step_count == 3 and live.run.history["step"] == [1, 2, 3]
    assert all((live.generator.state_dict()[k] == v).all() for k, v in kept.items())


def test_a_discriminator_that_has_won_pauses_the_run_with_advice(tiny_faces, tmp_path, monkeypatch):
    live = trainer(tiny_faces, tmp_path)
    monkeypatch.setattr(live.run.guard, "patience", 2)
    monkeypatch.setattr(type(live.loop), "__call__", lambda self, step: {"loss_g": 9.0, "loss_d": 0.0,
                                                                         "d_real": 1.0, "d_fake": 1e-5})
    live.step()
    with pytest.raises(DiscriminatorWon, match="Lower lr D"):
        live.step()
    assert live.step_count == 2 and live.run.history["step"] == [1, 2]  # the step happened and is shown
    live.step()  # the guard starts counting again: the user decides whether to go on


def test_saving_before_a_step_is_refused_and_names_never_clash(tiny_faces, tmp_path):
    live = trainer(tiny_faces, tmp_path)
    with pytest.raises(LatentExplorerError, match="nothing to save"):
        live.save()
    assert free_name(tmp_path / "dcgan") == tmp_path / "dcgan-2"  # its partial folder is there
    live.discard()
    assert not partial_folder(tmp_path / "dcgan").exists()


def test_stale_partial_folders_go_and_live_ones_stay(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone, alive, foreign = (partial_folder(tmp_path / n) for n in ("gone", "alive", "foreign"))
    for folder, owner in ((gone, dead.stdout.strip()), (alive, str(os.getpid())), (foreign, None)):
        folder.mkdir()
        if owner:
            (folder / OWNER_FILE).write_text(owner)
    remove_stale_partials(tmp_path)
    assert not gone.exists() and alive.exists() and foreign.exists()


def test_settings_say_what_is_wrong_and_where_the_data_is(tmp_path):
    with pytest.raises(LatentExplorerError, match="fewer than one batch"):
        LiveSettings(num_images=16, batch_size=64).validate()
    with pytest.raises(LatentExplorerError, match="prior is N\\(0,1\\)"):
        LiveSettings(family="vae", noise="U(0,1)").validate()
    assert data_folder("toyfaces") is None
    (tmp_path / "celeba64").mkdir()
    assert data_folder("celeba", str(tmp_path)) == str(tmp_path / "celeba64")
    assert data_folder("anime", str(tmp_path)) == str(tmp_path)  # the loader says what the folder lacks
    with pytest.raises(LatentExplorerError, match="Folder of your datasets"):
        data_folder("anime")
