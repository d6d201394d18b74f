"""One way to drive a real browser in the tests: Debian's chromium through Playwright, and the admin's login.

The ``chromium`` fixture (tests/conftest.py) yields a launched headless browser and closes it after the test;
``admin_login`` logs a role user in ("pw-<username>", as ``role_user`` makes them) and waits until the home has
saved the browser's time zone (console/timezone.js), so the next navigation is not cut short by its request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextmanager
def chromium_launched(executable_path: str) -> Iterator[Any]:
    """A headless chromium (Playwright's sync API), closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def admin_login(page: Any, base_url: str, username: str, password: str | None = None, *, then: str = "") -> None:
    """Log in at /admin/ and wait for the home (its time zone saved); then open ``then`` (a path) if given."""
    page.goto(f"{base_url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password or f"pw-{username}")
    page.click("input[type=submit]")
    page.wait_for_selector('#console-home[data-time-zone-set="1"]')
    if then:
        page.goto(f"{base_url}{then}")
