"""A real browser for the tests: Debian's Chromium driven by Playwright (its executable path;
Playwright never downloads a browser), started as the probe of this machine kind starts it,
with every request it makes recorded so a test can show nothing left the server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@contextmanager
def browser_page(screenshots: Path) -> Iterator[tuple[Any, list[str]]]:
    """A page of a fresh Chromium, and the URLs of every request it made."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is installed by scripts/setup")
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.on("request", lambda r: requested.append(r.url))
        try:
            yield page, requested
        finally:
            screenshots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshots / "last.png"))
            browser.close()
