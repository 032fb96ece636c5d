"""The Experiments page in headless Chromium, one screenshot per shipped group (see tests/test_browser.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from browser import needs_chromium, screenshot
from PIL import Image

from explorer.logic.experiments import find_groups

GROUPS = sorted(find_groups(Path(__file__).resolve().parent.parent / "checkpoints" / "experiments"))

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.mark.parametrize("group", GROUPS)
def test_each_group_renders_in_a_real_browser(server, tmp_path, group):
    # LATENT_EXPLORER_SCREENSHOTS=docs/screenshots keeps the pictures.
    out = Path(os.environ.get("LATENT_EXPLORER_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    shot = out / f"experiments-{group}.png"
    text = screenshot(f"{server}/experiments?group={group}", shot, wait_for_text="What each run ships", height=2600,
                      settle=8)
    assert "Traceback" not in text and "Verdicts" in text
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20, "the screenshot is blank"
