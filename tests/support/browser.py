"""Headless Chromium for the dashboard's browser tests: Debian's `chromium` and
`chromium-driver` driven by Selenium (scripts/setup installs all three), never a downloaded
browser. Screenshots go to $GITSTAGE_SCREENSHOTS when it is set (scripts/screenshots)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver, WebElement

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LAPTOP = (1280, 860)
PHONE = (390, 844)
MAX_SHOT_HEIGHT = 2200
T = TypeVar("T")


def unusable_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        return f"{' and '.join(missing)} missing: apt-get install chromium chromium-driver"
    if importlib.util.find_spec("selenium") is None:
        return "selenium missing: pip install -e '.[test]'"
    return None


@contextmanager
def chromium(size: tuple[int, int] = LAPTOP) -> Iterator[WebDriver]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def resize(driver: WebDriver, size: tuple[int, int]) -> None:
    driver.set_window_size(*size)


def screenshot(driver: WebDriver, name: str) -> None:
    """Save `<name>.png` into $GITSTAGE_SCREENSHOTS, when it is set."""
    folder = os.environ.get("GITSTAGE_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    size = driver.get_window_size()
    # The whole page, up to a few screens: grow the window to the document's height.
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    driver.set_window_size(size["width"], min(int(height) + 100, MAX_SHOT_HEIGHT))
    try:
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))
    finally:
        driver.set_window_size(size["width"], size["height"])


def until(driver: WebDriver, probe: Callable[[WebDriver], T], what: str, timeout: float = 30) -> T:
    """Poll the page until `probe` returns something truthy (Selenium's wait, with a deadline)."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.wait import WebDriverWait

    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
    )
    try:
        return wait.until(probe)
    except TimeoutException:
        raise AssertionError(f"{what} not seen within {timeout}s") from None


@pytest.fixture(scope="session", name="chromium")
def chromium_fixture() -> Iterator[WebDriver]:
    """One headless Chromium for the session; skipped, with the reason, where it is missing."""
    reason = unusable_reason()
    if reason is not None:
        pytest.skip(reason)
    with chromium() as driver:
        yield driver


def stage_version(driver: WebDriver, artifact: str, stage: str) -> str:
    """The version the models table shows in `artifact`'s row for `stage` ("" when none)."""
    chips = driver.find_elements(
        "css selector", f'#models tr[data-artifact="{artifact}"] li[data-stage="{stage}"] .version'
    )
    return str(chips[0].text) if chips else ""


def row_cells(row: WebElement) -> dict[str, str]:
    """A table row's cells: column label (`data-label`) -> text."""
    return {
        str(td.get_attribute("data-label")): str(td.text)
        for td in row.find_elements("css selector", "td")
    }


def sideways_overflow(driver: WebDriver) -> int:
    """Pixels the page would scroll sideways (0 or less: it fits the window's width)."""
    return int(
        driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
        )
    )
