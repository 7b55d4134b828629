"""Headless Chromium through Playwright's Python API, for UI tests against pytest-django's live_server.

Uses Debian's /usr/bin/chromium (never `playwright install`, which downloads a browser). Fixtures in
tests/conftest.py: `chromium` (one browser per test process) and `browser_page` (a fresh context
and page per test, English unless the test asks otherwise). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("BUZON_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIEWPORT = {"width": 1360, "height": 900}


def available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists()


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def new_page(browser: Any, base_url: str, *, locale: str = "en-US") -> Any:
    """A page in its own context (own cookies), sending Accept-Language for `locale`."""
    context = browser.new_context(base_url=base_url, locale=locale, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    return context.new_page()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/<name>.png (look at it: it is the UI's proof)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, username: str, password: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#sign-in")
    page.wait_for_load_state()
