"""The dashboard in a real browser: headless Chromium (tests/support/browser.py). The tests are
marked `browser` and skipped, with the reason, where Chromium or Selenium is missing."""

from __future__ import annotations

from tests.support.browser import chromium_fixture

__all__ = ["chromium_fixture"]
