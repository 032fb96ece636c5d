"""Pictures and numbers for the slides on the pages that show a grid: the sweep, VAE vs GAN, the experiments, the
upload and your photo offer the picture as PNG at native size and x4 (nearest neighbour) and the numbers as CSV,
with file names that say model, distribution, seed and step."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from latent_bundles import open_with_link
from PIL import Image

from explorer.core import downloads

EXPERIMENTS = Path(__file__).resolve().parent.parent / "checkpoints" / "experiments" / "data-size"


@pytest.fixture
def offered(monkeypatch):
    """Every set of download buttons a page draws: its file stem and what a click would make."""
    found = {}
    original = downloads._buttons

    def record(native, enlarged, stem, key, numbers):
        found[key] = (stem, native, enlarged, numbers)
        return original(native, enlarged, stem, key, numbers)

    monkeypatch.setattr(downloads, "_buttons", record)
    return found


def picture(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def check(found: tuple, *in_name: str) -> str:
    stem, native, enlarged, numbers = found
    for part in in_name:
        assert part in stem, (part, stem)
    small, big = picture(native()), picture(enlarged())
    assert big.shape[0] == small.shape[0] * 4 and small.shape[1] * 3 < big.shape[1] <= small.shape[1] * 4
    # Nearest neighbour: the images (right of any row labels, which are drawn again at each size) are the native
    # picture's pixels, each a 4x4 block.
    k = min(32, small.shape[1] // 2)
    assert np.array_equal(big[:, big.shape[1] - 4 * k:][::4, ::4], small[:, -k:])
    assert np.array_equal(big[:, big.shape[1] - 4 * k:][3::4, 3::4], small[:, -k:])
    table = downloads.csv_text(numbers() if callable(numbers) else numbers)
    assert table.count("\n") >= 2
    return table


def test_the_sweep_offers_its_rows_and_their_numbers(offered):
    open_with_link("views/sweep.py", {"model": "toyfaces/dcgan", "range": "-4,4", "step": "2", "seed": "3"})
    table = check(offered["sweep_download"], "toyfaces_dcgan", "sweep", "N-m-1", "seed3")
    assert table.startswith("mean,") and table.count("\n") == 6  # the header and m = -4, -2, 0, 2, 4


def test_vae_vs_gan_offers_both_grids_and_the_comparison(offered):
    open_with_link("views/compare.py", {"model": "toyfaces/vae", "mean": "-3", "seed": "2", "n": "8"})
    for role in ("VAE", "GAN"):
        table = check(offered[f"compare_download_{role}"], "toyfaces", "N-3-1", "seed2", "8-samples")
        assert "sharpness" in table


@pytest.mark.skipif(not EXPERIMENTS.is_dir(), reason="the shipped data-size group is not there")
def test_the_experiments_offer_every_runs_grid_at_the_step_and_the_metrics(offered):
    open_with_link("views/experiments.py", {"group": "data-size", "step": "500"})
    stem, native, _, numbers = offered["experiments_download"]
    check(offered["experiments_download"], "data-size", "step500")
    rows = numbers()
    assert len(rows) == len([p for p in EXPERIMENTS.iterdir() if (p / "config.json").is_file()])
    assert all(row["step"] == 500 for row in rows)


def test_the_upload_offers_its_first_look(offered):
    from training.models.dcgan import DCGANConfig, Generator

    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(Generator(DCGANConfig(g_width=8)).state_dict(), buffer)
    at = open_with_link("views/upload.py", {})
    at.file_uploader(key="upload_file").set_value(("netG.pth", buffer.getvalue(), "application/octet-stream")).run()
    assert not at.exception, at.exception
    check(offered["upload_download"], "netG.pth", "N-0-1", "seed0", "16-samples")


def test_your_photo_offers_the_photo_beside_its_reconstruction(offered):
    face = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(face).save(buffer, format="PNG")
    at = open_with_link("views/your_photo.py", {"model": "toyfaces/vae"})
    at.file_uploader(key="photo_files").set_value([("me.png", buffer.getvalue(), "image/png")]).run()
    assert not at.exception, at.exception
    table = check(offered["photo_vae_download"], "toyfaces_vae", "photo", "reconstruction")
    assert table.startswith("photo,reconstruction mse\nme.png,")
