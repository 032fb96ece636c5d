"""End to end in headless Chromium: on the real server, start a live run, see the step counter and the grid change,
pause, change the learning rate, resume, stop, and open the result on the sampling page; a screenshot is taken
mid-run (LATENT_EXPLORER_SCREENSHOTS=docs/screenshots keeps it as docs/screenshots/train-live-page.png)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from browser import CHROMEDRIVER, CHROMIUM, REPO, launch, needs_chromium
from PIL import Image

pytestmark = [pytest.mark.browser, needs_chromium]
DEADLINE = 240  # seconds any wait may take on a busy machine (nothing asserts on time)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cache, scratch = tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("server-tmp")
    # The server's temporary folder (where its live runs work) is ours, so the end can check nothing is left there.
    proc, url = launch({**os.environ, "PYTHONPATH": str(REPO), "LATENT_EXPLORER_CACHE": str(cache),
                        "TMPDIR": str(scratch)})
    yield url
    proc.terminate()  # a busy machine takes a while to tear torch down: wait, but do not judge the time
    try:
        proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the server did not stop on SIGTERM")
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p).find(str(scratch)) >= 0]
    assert not left, f"live worker processes outlived the server: {[_cmdline(p) for p in left]}"
    assert not list(scratch.glob("latent-explorer-live-*")), "the server left its live-run folder behind"


def _cmdline(proc_dir: Path) -> str:
    try:
        return (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1500,1900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def body(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def until(driver, condition, what: str):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, DEADLINE, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: condition(d))
    except Exception:
        pytest.fail(f"gave up waiting for {what}; the page says: {body(driver)[-1500:]}")


def button(driver, label: str):
    from selenium.webdriver.common.by import By

    for element in driver.find_elements(By.CSS_SELECTOR, "button"):
        if label in element.text and element.is_enabled():
            return element
    return None


def click(driver, label: str) -> None:
    until(driver, lambda d: button(d, label), f"the {label!r} button").click()


def slide(driver, label: str, key: str, target: str) -> None:
    """Move the (select) slider labelled `label` to the option shown as `target` with the arrow keys, as a keyboard
    user would (the slider's thumb is a visually hidden range input that takes the focus)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    def thumb(d):
        for slider in d.find_elements(By.CSS_SELECTOR, '[data-testid="stSlider"]'):
            if label in slider.text:
                found = slider.find_elements(By.CSS_SELECTOR, 'input[type="range"]')
                if found and found[0].is_enabled():
                    return found[0]
        return None

    for _ in range(10):
        element = until(driver, thumb, f"the {label!r} slider")
        if element.get_attribute("aria-valuetext") == target:
            break
        before = element.get_attribute("value")
        driver.execute_script("arguments[0].focus();", element)
        ActionChains(driver).send_keys(key).perform()
        until(driver, lambda d, was=before: (t := thumb(d)) is not None and t.get_attribute("value") != was,
              f"{label!r} to move")
        time.sleep(1.0)  # the page reruns with the new value
    assert thumb(driver).get_attribute("aria-valuetext") == target


def step_shown(driver) -> int:
    from selenium.webdriver.common.by import By

    for metric in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
        lines = metric.text.splitlines()
        if lines and lines[0] == "step":
            return int(lines[-1])
    return -1


def grid_source(driver) -> str | None:
    from selenium.webdriver.common.by import By

    images = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')
    return images[0].get_attribute("src") if images else None


def model_shown(driver) -> str:
    """The sidebar's model box: a select box shows its choice as its input's value, not as page text."""
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSelectbox"] input')
    return (boxes[0].get_attribute("value") or "") if boxes else ""


def test_a_live_run_in_a_real_browser(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    out = Path(os.environ.get("LATENT_EXPLORER_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    browser.get(f"{server}/train_live")
    until(browser, lambda d: button(d, "Start"), "the page")
    slide(browser, "Network width", Keys.LEFT, "8")
    slide(browser, "Batch size", Keys.LEFT, "16")
    slide(browser, "Training images", Keys.LEFT, "256")
    click(browser, "Start")
    until(browser, lambda d: step_shown(d) >= 3 and grid_source(d), "the first steps")
    first_step, first_grid = step_shown(browser), grid_source(browser)
    until(browser, lambda d: step_shown(d) > first_step and grid_source(d) != first_grid, "the grid to change")
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg"), "the curves")
    time.sleep(1)
    shot = out / "train-live-page.png"
    browser.save_screenshot(str(shot))
    assert np.asarray(Image.open(shot).convert("L"), dtype=float).std() > 20, "the screenshot is blank"

    click(browser, "Pause")
    until(browser, lambda d: "Paused after step" in body(d), "the pause")
    slide(browser, "lr G", Keys.RIGHT, "0.0005")
    click(browser, "Resume")
    until(browser, lambda d: "lr G 0.0002 → 0.0005" in body(d) and "Training: step" in body(d), "the change")
    click(browser, "Stop and save")
    until(browser, lambda d: "Saved as the model bundle" in body(d), "the saved bundle")
    click(browser, "Open it on the sampling page")
    until(browser, lambda d: "Sample the latent space" in body(d) and model_shown(d).startswith("live · toyfaces DCGAN")
          and d.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img'), "the sampling page")
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), "the page shows a traceback"
    assert "Traceback" not in body(browser)
