"""End to end: start `streamlit run explorer/app.py` on a free localhost port and screenshot it in headless Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from browser import needs_chromium, screenshot
from PIL import Image

pytestmark = [pytest.mark.browser, needs_chromium]


PAGES = [
    # (url path, text that appears once the page has computed, screenshot name)
    ("", "Why they look like this", "sample-page.png"),
    ("sweep", "Mean sweep", "sweep-page.png"),
    ("replay", "Training replay", "training-page.png"),
]


@pytest.mark.parametrize("path,ready_text,name", PAGES)
def test_pages_render_in_a_real_browser(server, tmp_path, path, ready_text, name):
    # Set LATENT_EXPLORER_SCREENSHOTS=docs/screenshots to refresh the README's pictures.
    out = Path(os.environ.get("LATENT_EXPLORER_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    shot = out / name
    text = screenshot(f"{server}/{path}", shot, wait_for_text=ready_text)
    assert "Traceback" not in text
    if not path:
        assert "Sample the latent space" in text and "Healthy" in text
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20, "the screenshot is blank"
