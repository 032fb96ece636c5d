"""End to end: start `streamlit run explorer/app.py` on a free localhost port and screenshot it in headless Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium not installed (Debian packages chromium and chromium-driver; .ci/run installs them)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`streamlit run explorer/app.py` on a free localhost port, once it answers its health check: (process, url)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "explorer" / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {proc.stdout.read().decode()[-2000:]}")
    return proc, url


@contextlib.contextmanager
def running_app(**env_extra: str):
    """`streamlit run explorer/app.py` on a free port (extra environment variables allowed); yields its URL."""
    proc, url = launch({**os.environ, "PYTHONPATH": str(REPO), **env_extra})
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # still busy with a model on a loaded machine
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server():
    with running_app() as url:
        yield url


@contextlib.contextmanager
def chrome(width: int = 1500, height: int = 1900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def page_ready(driver, wait_for_text: str, timeout: float = 120, settle: float = 2.0) -> None:
    """Wait until the page shows the text and at least one image, then for plotly to finish drawing."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: wait_for_text in d.find_element(By.TAG_NAME, "body").text
        and d.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')
    )
    time.sleep(settle)


def screenshot(url: str, path: Path, wait_for_text: str, width: int = 1500, height: int = 1900,
               settle: float = 2.0) -> str:
    from selenium.webdriver.common.by import By

    with chrome(width, height) as driver:
        driver.get(url)
        page_ready(driver, wait_for_text, settle=settle)
        driver.save_screenshot(str(path))
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), "the page shows a traceback"
        return driver.find_element(By.TAG_NAME, "body").text


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
