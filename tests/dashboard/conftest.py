"""The dashboard in a real browser: headless Chromium (tests/support/browser.py). The tests are
marked `browser` and skipped, with the reason, where Chromium or Selenium is missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import browser


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    reason = browser.unusable_reason()
    if reason is not None:
        pytest.skip(reason)
    with browser.chromium() as driver:
        yield driver
