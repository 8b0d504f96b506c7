"""What the browser tests share: signing in, waiting for the live feed, screenshots, cpsim's orders."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from .conftest import helpers

SHOTS = os.environ.get("IBKR_CONSOLE_SCREENSHOTS")


def shot(page: Page, name: str) -> None:
    if SHOTS:
        if page.locator("body[data-events]").count():
            live(page)
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def sign_in(browser: Any, url: str, username: str, password: str) -> Page:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(url + "/")
    expect(page).to_have_url(re.compile(r"/signin"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")
    return page


def live(page: Page) -> None:
    """Wait until the page's event stream is open."""
    expect(page.locator("body")).to_have_attribute("data-live", "open", timeout=10_000)


def orders_at_cpsim(stack: Any) -> list[dict[str, Any]]:
    state = stack.sim("GET", "state")
    orders = state.get("orders") or {}
    return list(orders.values()) if isinstance(orders, dict) else list(orders)


def open_market(stack: Any) -> None:
    """Make sure a market order fills now. cpsim on this branch fills market orders at any hour; once it
    keeps exchange hours (issue 17, point 7), call its "open the market" control here (`/sim/...`)."""
    stack.sim("POST", "prices", {"AAPL": helpers.AAPL})


def acknowledge_on_page(page: Page, url: str) -> None:
    """Tick every disclosure not yet acknowledged on the Compliance page and acknowledge them."""
    page.goto(url + "/compliance")
    boxes = page.locator("#disclosures input[name=disclosure]")
    if boxes.count():
        for n in range(boxes.count()):
            boxes.nth(n).check()
        page.click("#disclosures button")
        expect(page.locator("#flash")).to_contain_text("acknowledged")
    expect(page.locator("#disclosures")).to_contain_text("acknowledged")
    expect(page.locator("#disclosures")).not_to_contain_text("not acknowledged")


def httpx_url(url: str) -> dict[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return {"host": parts.hostname or "localhost", "port": str(parts.port)}
