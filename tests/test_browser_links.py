"""End to end in headless Chromium: set up a view on the sampling page, take the address the page wrote, open it in
a second browser (a new session) and get the same grid, pixel for pixel."""

from __future__ import annotations

import io
import time
import urllib.request
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from browser import chrome, needs_chromium, page_ready, running_app
from PIL import Image

pytestmark = [pytest.mark.browser, needs_chromium]


def grid_pixels(driver) -> np.ndarray:
    """The first picture on the page (the sample grid), fetched from the server as the browser shows it."""
    from selenium.webdriver.common.by import By

    source = driver.find_element(By.CSS_SELECTOR, '[data-testid="stImage"] img').get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(urllib.request.urlopen(source, timeout=30).read())).convert("RGB"))


def wait_until(condition, timeout: float = 120, what: str = "") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def test_a_link_opens_the_same_grid_in_a_new_session():
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with running_app() as url, chrome(1400, 1400) as teacher:
        teacher.get(f"{url}/?model=toyfaces/dcgan")
        page_ready(teacher, "samples from z ~ N(0, 1)")
        next(b for b in teacher.find_elements(By.TAG_NAME, "button") if b.text == "N(-10,1)").click()
        page_ready(teacher, "samples from z ~ N(-10, 1)")
        seed = teacher.find_element(By.CSS_SELECTOR, 'input[aria-label="seed"]')
        seed.send_keys(Keys.CONTROL, "a")
        seed.send_keys("7", Keys.ENTER)
        wait_until(lambda: "seed=7" in teacher.current_url, what="the address to hold the seed")
        time.sleep(3)  # the rerun that drew the seed-7 grid
        link = teacher.current_url
        asked = parse_qs(urlsplit(link).query)
        assert asked["model"] == ["toyfaces/dcgan"] and asked["mean"] == ["-10"] and asked["seed"] == ["7"], link
        made = grid_pixels(teacher)
        # The sidebar's "Link to this view" links to the same settings as the address bar.
        hrefs = [a.get_attribute("href") or "" for a in
                 teacher.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebar"] a')]
        assert any(parse_qs(urlsplit(h).query) == asked for h in hrefs), hrefs

        with chrome(1400, 1400) as visitor:
            visitor.get(link)
            page_ready(visitor, "samples from z ~ N(-10, 1)")
            assert visitor.find_element(By.CSS_SELECTOR, 'input[aria-label="seed"]').get_attribute("value") == "7"
            assert "This link asked for settings" not in visitor.find_element(By.TAG_NAME, "body").text
            opened = grid_pixels(visitor)
    assert made.shape == opened.shape and np.array_equal(made, opened)
