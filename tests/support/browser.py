"""A web bundle in a real browser: Debian's chromium, headless, driven by Playwright
(which cannot download browsers here), loading the bundle from a loopback HTTP server.
The main job uses it too, to show the browser's results."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, sync_playwright

from syntra.config.model import SwiftGuest
from syntra.plan import Destination, GuestPlan, WebPlan

CHROMIUM = Path("/usr/bin/chromium")

# Calls an export of the bundle's module by its name in the module; an i64 comes back
# as {"bigint": "<decimal>"} (a BigInt does not cross to Python as itself).
CALL = """async ([module, name, args]) => {
  const guest = await import(module);
  try {
    const value = guest.functions[name](...args);
    return typeof value === "bigint" ? { value: { bigint: String(value) } } : { value };
  } catch (error) {
    return { error: String(error) };
  }
}"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """`folder` over HTTP on 127.0.0.1 (what `python -m http.server -d folder` does)."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "run .ci/setup: it installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class Visit:
    """What the bundle's page did: its results, the calls made from outside, the
    console (`type: text`), uncaught errors and failed requests, and the screenshot."""

    results: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    console: list[str]
    errors: list[str]
    screenshot: Path


def visit(
    browser: Browser,
    folder: Path,
    module: str,
    screenshot: Path,
    calls: Sequence[tuple[str, list[Any]]] = (),
) -> Visit:
    """Open `folder`'s index.html, wait for its calls, make `calls` through `module`
    (the bundle's `<guest>.js`) and take a screenshot."""
    console: list[str] = []
    errors: list[str] = []
    with serving(folder) as url:
        page = browser.new_page()
        page.on("console", lambda message: console.append(_said(message)))
        page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
        page.on("requestfailed", lambda request: errors.append(f"requestfailed: {request.url}"))
        page.goto(f"{url}/index.html")
        page.wait_for_function("document.body.dataset.status !== 'running'", timeout=30_000)
        results: list[dict[str, Any]] = page.evaluate("window.syntraResults")
        made = [page.evaluate(CALL, [f"./{module}", name, args]) for name, args in calls]
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        page.close()
    return Visit(results, made, console, errors, screenshot)


def _said(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"


def guest_plan(name: str, tests: list[dict[str, Any]]) -> GuestPlan:
    """A guest plan for a module built by the test itself (only its name, tests, limits
    and web settings matter to `web.build` and the sandbox)."""
    settings = SwiftGuest(language="swift", source="src", mode="embedded")
    return GuestPlan(
        name=name, language="swift", settings=settings, source="src", optimize="Os",
        output=f"{name}.wasm", limits={"max_mem": 1 << 20, "max_ms": 1000, "fuel": None},
        tests=tests, destination=Destination(None, False, name, [], []),
        web=WebPlan(f"dist/web/{name}", f"{name} in the browser", True),
    )  # fmt: skip
