"""Shared by the browser tests: an app served on loopback and Debian's headless Chromium."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AXE = Path(
    os.environ.get("RADLOOP_AXE_CORE")
    or Path(__file__).resolve().parent / "artifacts/npm/node_modules/axe-core/axe.min.js"
)
"""axe-core from npm (`.ci/run` installs it: npm install --prefix tests/artifacts/npm)."""
AXE_MISSING = (
    f"axe-core is not installed at {AXE} (npm install --prefix tests/artifacts/npm axe-core@4.14.1)"
)
_SERIOUS = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
    .filter((v) => ["serious", "critical"].includes(v.impact))
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" "))}`)"""


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands (the page's
    browser context needs ``bypass_csp=True``: the pages allow only their own scripts)."""
    page.add_script_tag(path=str(AXE))
    found: list[str] = page.evaluate(_SERIOUS)
    return found


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def sign_in(page: Any, base: str, username: str, password: str) -> None:
    """Sign ``page`` in to the workstation at ``base`` through its login form."""
    page.goto(f"{base}/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}/")


@contextmanager
def signed_in_page(
    browser: Any, base: str, username: str, password: str, *, dialogs: bool = False
) -> Iterator[Any]:
    """A fresh 1500 × 900 browser context's page, signed in as ``username``; fails the test
    on any JavaScript error the page raised. With ``dialogs``, confirmation dialogs are
    accepted and their messages kept in ``page.dialogs``."""
    context = browser.new_context(viewport={"width": 1500, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    if dialogs:
        opened.dialogs = []

        def confirm(dialog: Any) -> None:
            opened.dialogs.append(dialog.message)
            dialog.accept()

        opened.on("dialog", confirm)
    sign_in(opened, base, username, password)
    yield opened
    context.close()
    assert errors == [], errors
