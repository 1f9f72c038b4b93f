"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, for dashboard tests.

``browser_page`` yields a Playwright page plus the list of every request it made; at teardown
it asserts that no request went to a host other than 127.0.0.1 (the map must work offline).
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


class Page:
    """A Playwright page with the requests it made and a screenshot helper."""

    def __init__(self, page, requests: list[str]):
        self.page, self._requests = page, requests

    @property
    def requests(self) -> list[str]:
        """Every request the page's context has made so far.

        Playwright's sync API hands its events to Python only inside a call to it: a test that waits
        without calling Playwright (posting cases, reading a stream) would read a list missing what
        the browser did meanwhile. A round trip to the page first delivers every event sent before it.
        """
        if not self.page.is_closed():
            try:
                self.page.evaluate("0")
            except Exception:  # noqa: BLE001 - the page is going (navigation, closing): the list is what it is
                pass
        return self._requests

    def __getattr__(self, name):
        return getattr(self.page, name)

    def settle(self, quiet: float = 3.0, timeout: float = 40.0) -> int:
        """Wait until the page made no request for ``quiet`` seconds; how many it has made."""
        from tests.conftest import wait_until

        last = [len(self.requests), time.monotonic()]

        def still():
            n = len(self.requests)
            if n != last[0]:
                last[:] = [n, time.monotonic()]
            return time.monotonic() - last[1] >= quiet

        wait_until(still, timeout=timeout, interval=0.2, message="the page to stop making requests")
        return len(self.requests)

    def screenshot_to(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
                and urlparse(u).hostname not in ("127.0.0.1",)]


@pytest.fixture
def browser_page(chromium):
    """A fresh browser context at 1600×1000; fails the test if any request left 127.0.0.1."""
    context = chromium.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    # signed in as the test suite's operator (tests/conftest.py TEST_TOKEN) on every 127.0.0.1 server
    from tests.conftest import TEST_TOKEN

    context.add_cookies([{"name": "gridwatch_session", "value": TEST_TOKEN, "domain": "127.0.0.1", "path": "/"}])
    requests: list[str] = []
    context.on("request", lambda req: requests.append(req.url))
    page = context.new_page()
    page.set_default_timeout(20_000)
    wrapped = Page(page, requests)
    yield wrapped
    context.close()
    foreign = wrapped.foreign_requests()
    assert not foreign, f"the page made requests outside 127.0.0.1: {sorted(set(foreign))[:10]}"
