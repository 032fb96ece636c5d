"""Shared fixtures: tiny data and tiny bundles made on the fly (no downloads, seconds on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED_DCGAN = REPO / "checkpoints" / "toyfaces" / "dcgan"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # Tests never touch the user's real dataset cache.
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _no_data_roots(monkeypatch):
    # Nor the user's dataset copies: a test that wants one sets LATENT_EXPLORER_DATA_ROOT or *_ROOT itself.
    import os

    for name in list(os.environ):
        if name == "LATENT_EXPLORER_DATA_ROOT" or (name.startswith("LATENT_EXPLORER_") and name.endswith("_ROOT")):
            monkeypatch.delenv(name)
    # Nor a folder an earlier test's page read a dataset from (the server remembers it for later visitors).
    from explorer.logic import real_images

    monkeypatch.setattr(real_images, "_READ_FROM", {})


@pytest.fixture(scope="session")
def tiny_faces():
    from training.data.base import ImageDataset
    from training.data.toyfaces import ATTRIBUTES, generate_toyfaces

    images, labels = generate_toyfaces(48, seed=3, size=32, workers=1)
    return ImageDataset("toyfaces", images, labels, ATTRIBUTES)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_faces, tmp_path_factory) -> Path:
    """A DCGAN trained for 4 steps at 32x32: real code path, tiny cost."""
    from training.loops.config import TrainConfig
    from training.loops.trainer import train
    from training.models.dcgan import DCGANConfig

    out = tmp_path_factory.mktemp("bundles") / "tiny-dcgan"
    return train(
        "dcgan",
        tiny_faces,
        DCGANConfig(latent_dim=16, image_size=32, g_width=8, d_width=8),
        TrainConfig(steps=4, batch_size=16, snapshot_steps=(0, 2), checkpoint_every=2),
        out,
        source={"name": "toyfaces", "num_images": 48, "seed": 3},
        progress=False,
    )


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # Tiny test models spend more time synchronising two threads than computing; one thread is faster
    # and keeps timings steady when the machine is busy.
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def one_torch_thread():
    """For modules that train tiny networks: a second intra-op thread buys nothing there, and on a busy 2-core
    machine two threads waiting on each other made some tests 15x slower. Use with
    `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def server():
    """The app under `streamlit run` on a free localhost port, for a module of browser tests: its URL."""
    from browser import running_app

    with running_app() as url:
        yield url
