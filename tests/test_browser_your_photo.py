"""End to end in headless Chromium: upload a photo on "Your photo in the latent space" and see the VAE's
reconstruction with the point on the map, and the GAN's inverted image.

The photo is a procedural face the test draws; LATENT_EXPLORER_PHOTO=path/to/face.jpg uses your own instead, and
LATENT_EXPLORER_SCREENSHOTS=folder keeps the screenshots."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from browser import REPO, chrome, needs_chromium, page_ready, running_app
from PIL import Image

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    own = os.environ.get("LATENT_EXPLORER_PHOTO")
    if own:
        return Path(own).resolve()
    from training.data.toyfaces import generate_toyfaces

    path = tmp_path_factory.mktemp("photo") / "my-face.png"
    Image.fromarray(generate_toyfaces(1, seed=4, size=160, workers=1)[0][0]).save(path)
    return path


def only(tmp_path: Path, *bundles: str) -> Path:
    """A checkpoints folder holding just these shipped bundles (linked, not copied)."""
    for bundle in bundles:
        (tmp_path / bundle).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / bundle).symlink_to(REPO / "checkpoints" / bundle)
    return tmp_path


def upload_and_shoot(url: str, photo: Path, ready_text: str, shot: Path) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with chrome(1500, 2300) as driver:
        driver.get(f"{url}/your_photo")
        WebDriverWait(driver, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, 'input[type="file"]'))
        driver.find_element(By.CSS_SELECTOR, 'input[type="file"]').send_keys(str(photo))
        page_ready(driver, ready_text, timeout=300)
        WebDriverWait(driver, 120).until(lambda d: all(  # every chart drawn, its points included
            chart.find_elements(By.CSS_SELECTOR, ".scatterlayer .trace")
            for chart in d.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]')))
        time.sleep(1)
        driver.save_screenshot(str(shot))
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), "the page shows a traceback"
        return driver.find_element(By.TAG_NAME, "body").text


@pytest.mark.parametrize("bundles,expected,name", [
    (("toyfaces/vae", "toyfaces/featurenet"), "projected with the same PCA", "your-photo-vae.png"),
    (("celeba/dcgan", "celeba/featurenet"), "closer than the best of 64 random codes", "your-photo-gan.png"),
])
def test_a_photo_is_placed_in_a_real_browser(tmp_path, photo, bundles, expected, name):
    missing = [b for b in bundles if not (REPO / "checkpoints" / b / "config.json").exists()]
    if missing:
        pytest.skip(f"shipped bundles missing: {missing}")
    out = Path(os.environ.get("LATENT_EXPLORER_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    with running_app(LATENT_EXPLORER_CHECKPOINTS=str(only(tmp_path / "checkpoints", *bundles))) as url:
        text = upload_and_shoot(url, photo, "The code's length is", out / name)  # the page's last sentence
    assert "Traceback" not in text and "Cannot use this photo" not in text
    assert expected in text
    if "vae" in name:
        assert "reconstruction MSE" in text
    pixels = np.asarray(Image.open(out / name).convert("L"), dtype=float)
    assert pixels.std() > 20, "the screenshot is blank"
