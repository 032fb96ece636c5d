"""Readable from the back of the room, measured in headless Chromium on a 1920 x 1080 screen at 150% zoom (a 1280 x
720 CSS viewport drawn at 1.5 device pixels per CSS pixel): chart text at least 16 px, equilibrium labels apart,
metric labels whole, the active preset marked, experiment faces at least 64 px wide.

LATENT_EXPLORER_SCREENSHOTS=folder keeps a screenshot of each page (docs/screenshots/readability-*.png)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest
from browser import CHROMEDRIVER, CHROMIUM, REPO, needs_chromium

from explorer.tools.app_server import Server

pytestmark = [pytest.mark.browser, needs_chromium]
SMALLEST_TEXT_PX = 16
SMALLEST_FACE_PX = 64
# Every text of a plotly chart, with its size as drawn and its box on the page.
CHART_TEXTS = """
return Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"] svg text'))
    .filter(t => t.textContent.trim())
    .map(t => { const box = t.getBoundingClientRect();
                return {text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize),
                        box: [box.left, box.top, box.right, box.bottom]}; });
"""
# Parts of the metrics (label, value, delta) whose text does not fit: cut off with an ellipsis.
CUT_METRICS = """
return Array.from(document.querySelectorAll('[data-testid="stMetric"] *'))
    .filter(e => e.scrollWidth > e.clientWidth + 1 && e.textContent.trim())
    .map(e => e.textContent);
"""


@pytest.fixture(scope="module")
def server():
    app = Server.start(checkpoints=str(REPO / "checkpoints"))
    try:
        yield app.url
    finally:
        app.stop()


@contextlib.contextmanager
def projector_screen():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--window-size=1280,720", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1280, "height": 720, "deviceScaleFactor": 1.5, "mobile": False})
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver, url: str, ready_text: str, scroll_to: str | None = None, name: str | None = None) -> None:
    """Open the page, wait for its text and for plotly to draw; optionally scroll a header to the top and keep a
    screenshot."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 300).until(lambda d: ready_text in d.find_element(By.TAG_NAME, "body").text)
    WebDriverWait(driver, 300).until(lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]'))
    time.sleep(3)
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), "the page shows a traceback"
    if scroll_to:
        header = driver.find_element(By.XPATH, f"//*[self::h1 or self::h2 or self::h3][contains(., {scroll_to!r})]")
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", header)
        time.sleep(2)
    folder = os.environ.get("LATENT_EXPLORER_SCREENSHOTS")
    if folder and name:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"readability-{name}.png"))


def faces_across(width: int) -> int:
    """Faces in a row of a snapshot grid (32 px faces, a 2 px border before each and after the last) enlarged a
    whole number of times to `width` pixels."""
    return next(n for n in (2, 3, 4, 5, 6, 7, 8) for scale in range(1, 9) if (n * 34 + 2) * scale == width)


def overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_sampling_page_labels_whole_and_active_preset_marked(server):
    from selenium.webdriver.common.by import By

    with projector_screen() as driver:
        open_page(driver, server, "Why they look like this", "Why they look like this", "sample")
        assert driver.execute_script(CUT_METRICS) == []
        marked = [b.text for b in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stBaseButton-primary"]')]
        assert marked == ["N(0,1)"]
        small = [t for t in driver.execute_script(CHART_TEXTS) if t["px"] < SMALLEST_TEXT_PX]
        assert not small, small


def test_interpolation_numbers_whole_and_no_arrow_without_a_change(server):
    from selenium.webdriver.common.by import By

    with projector_screen() as driver:
        open_page(driver, f"{server}/interpolate", "The numbers", "The numbers", "interpolate")
        assert driver.execute_script(CUT_METRICS) == []
        no_dip = driver.find_element(By.XPATH, "//*[@data-testid='stMetricDelta'][contains(., 'no dip')]")
        assert not no_dip.find_elements(By.TAG_NAME, "svg")  # no arrow: nothing changed
        small = [t for t in driver.execute_script(CHART_TEXTS) if t["px"] < SMALLEST_TEXT_PX]
        assert not small, small


def test_training_replay_chart_text_and_equilibrium_labels(server):
    with projector_screen() as driver:
        open_page(driver, f"{server}/replay", "Loss curves", "Loss curves", "replay")
        assert driver.execute_script(CUT_METRICS) == []
        texts = driver.execute_script(CHART_TEXTS)
        small = [t for t in texts if t["px"] < SMALLEST_TEXT_PX]
        assert not small, small
        labels = [t for t in texts if "equilibrium" in t["text"]]
        assert len(labels) == 3
        assert not any(overlap(a["box"], b["box"]) for i, a in enumerate(labels) for b in labels[i + 1:]), labels


def test_experiment_faces_are_at_least_64_px(server):
    from selenium.webdriver.common.by import By

    with projector_screen() as driver:
        open_page(driver, f"{server}/experiments?group=cgan-balance", "Fixed-noise grids", "Fixed-noise grids",
                  "experiments")
        grids = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')
        assert grids
        for grid in grids[:2]:
            shown = driver.execute_script("return arguments[0].getBoundingClientRect().width", grid)
            across = faces_across(driver.execute_script("return arguments[0].naturalWidth", grid))
            assert shown / across >= SMALLEST_FACE_PX, (shown, across)
        small = [t for t in driver.execute_script(CHART_TEXTS) if t["px"] < SMALLEST_TEXT_PX]
        assert not small, small
