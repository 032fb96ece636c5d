"""Headless Chromium on the real app, for the browser tests: `streamlit run explorer/app.py` on a free localhost port,
a Chromium window driven by selenium, waiting until a page has drawn, and a screenshot of it. A browser test module
starts with `pytestmark = [pytest.mark.browser, needs_chromium]`: it runs with `./test --all`, and skips (saying
why) where Chromium is not installed."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from explorer.tools.app_server import free_port

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium not installed (Debian packages chromium and chromium-driver; .ci/run installs them)",
)


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


@contextlib.contextmanager
def chrome(width: int = 1500, height: int = 1900):
    """A headless Chromium window of this size, driven by selenium."""
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
    """Open the page at `url`, wait until it shows `wait_for_text`, save a screenshot at `path`; the page's text."""
    from selenium.webdriver.common.by import By

    with chrome(width, height) as driver:
        driver.get(url)
        page_ready(driver, wait_for_text, settle=settle)
        driver.save_screenshot(str(path))
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), "the page shows a traceback"
        return driver.find_element(By.TAG_NAME, "body").text
