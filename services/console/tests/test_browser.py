"""The console in a real browser (headless Chromium) against a whole `make run` stack, nothing mocked.

Flows: sign in; a blocked order shows its reasons and cpsim saw no order; an allowed order is placed,
cpsim fills it, the sync reports it and the open Positions page updates without a reload; a halt from
the CLI reaches an open page within 2 s and the ticket then refuses; audit verify shows ok; a viewer sees
no action button and a crafted POST is refused. With IBKR_CONSOLE_SCREENSHOTS=<dir> each page is saved.
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ibkr_common.db.engine import make_engine
from ibkr_console.pages import ORDERS_PAGE
from ibkr_console.users import UserStore

from .browser_helpers import (
    acknowledge_on_page,
    httpx_url,
    live,
    open_market,
    orders_at_cpsim,
    shot,
    sign_in,
)
from .conftest import helpers

#: The account of `make run`'s second simulated login (`sim_gateways.spare`).
SPARE_ACCOUNT = "DU7654321"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
VIEWER = ("watcher", "viewer-password-123")
#: A limit order no account of the simulator can pay for (100,000 x 100 = 10 million).
TOO_BIG = {"symbol": "AAPL", "quantity": "100000", "order_type": "LMT", "limit_price": "100"}


@pytest.fixture(scope="module")
def console(stack: Any, admin: dict[str, str]) -> dict[str, Any]:
    url = stack.info["console_url"]
    assert url.startswith("http://127.0.0.1:")

    async def add_viewer() -> None:
        engine = make_engine(stack.info["database_url"])
        try:
            await UserStore(engine).create(VIEWER[0], VIEWER[1], "viewer", admin["owner_user_id"])
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
        pool.submit(asyncio.run, add_viewer()).result()
    return {"url": url, "admin": admin}


@pytest.fixture(scope="module")
def admin_page(browser: Any, console: dict[str, Any]) -> Page:
    return sign_in(browser, console["url"], console["admin"]["username"], console["admin"]["password"])


def test_sign_in_is_required_and_a_wrong_password_is_refused(browser: Any, console: dict[str, Any]):
    context = browser.new_context()
    page = context.new_page()
    for path in ("/", "/positions", "/ticket", "/audit/export"):
        page.goto(console["url"] + path)
        expect(page).to_have_url(re.compile(r"/signin" if path == "/" else r"/signin\?next="))
    page.fill("input[name=username]", console["admin"]["username"])
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    expect(page.locator("#signin-error")).to_have_text("wrong username or password")
    crafted = context.request.post(console["url"] + "/ticket", form={"action": "submit", **TOO_BIG})
    assert crafted.status == 401
    context.close()


def test_every_page_shows_paper_unmistakably_and_no_secret(admin_page: Page, console: dict[str, Any]):
    page = admin_page
    password = console["admin"]["password"]
    for path, name in (("/", "overview"), ("/account", "account"), ("/positions", "positions"),
                       ("/orders", "orders"), ("/ticket", "ticket"), ("/compliance", "compliance"),
                       ("/audit", "audit"), ("/setup", "setup")):
        page.goto(console["url"] + path)
        expect(page.locator("#env")).to_contain_text("PAPER TRADING")
        assert password not in page.content()
        shot(page, name)
    cookie = next(c for c in page.context.cookies() if c["name"] == "ibkr_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # make run serves plain HTTP on 127.0.0.1 (IBKR_CONSOLE_SECURE_COOKIES=false)


def test_a_blocked_order_shows_its_reasons_and_is_never_sent(admin_page: Page, stack: Any, console: dict[str, Any]):
    page = admin_page
    page.goto(console["url"] + "/ticket")
    for name, value in TOO_BIG.items():
        if name == "order_type":
            page.select_option("select[name=order_type]", value)
        else:
            page.fill(f"input[name={name}]", value)
    page.click("#check")
    decision = page.locator("#decision, #refusal")
    expect(decision).to_contain_text("BLOCK", ignore_case=True)
    reasons = page.locator("ul.reasons li")
    assert reasons.count() >= 1
    assert any("block" in text for text in reasons.all_inner_texts())
    expect(page.locator("#submit")).to_have_count(0)
    shot(page, "ticket-blocked")
    assert not [o for o in orders_at_cpsim(stack) if Decimal(str(o.get("quantity", 0))) == Decimal(TOO_BIG["quantity"])]


def test_acknowledge_the_disclosures_on_the_compliance_page(admin_page: Page, console: dict[str, Any]):
    acknowledge_on_page(admin_page, console["url"])


def test_an_allowed_order_fills_and_the_open_positions_page_updates_live(
        browser: Any, admin_page: Page, stack: Any, console: dict[str, Any]):
    open_market(stack)
    acknowledge_on_page(admin_page, console["url"])
    watcher = sign_in(browser, console["url"], console["admin"]["username"], console["admin"]["password"])
    watcher.goto(console["url"] + "/positions")
    live(watcher)
    before = watcher.locator("tr[data-symbol=AAPL] .qty")
    held = Decimal(before.inner_text()) if before.count() else Decimal(0)
    watcher.evaluate("window.__noReload = true")

    page = admin_page
    page.goto(console["url"] + "/ticket")
    page.fill("input[name=symbol]", "AAPL")
    page.fill("input[name=quantity]", "7")
    page.select_option("select[name=order_type]", "MKT")
    page.click("#check")
    expect(page.locator("#decision")).not_to_contain_text("BLOCK")
    page.click("#submit")
    expect(page.locator("#result")).to_contain_text("Submitted")
    order_id = page.locator("#order-id").inner_text()
    assert order_id
    shot(page, "ticket-submitted")
    assert any(str((o.get("sim") or {}).get("order_id")) == order_id for o in orders_at_cpsim(stack)), order_id

    # the fill reaches the page through the sync-worker's events (its schedule decides when): no reload
    expect(watcher.locator("tr[data-symbol=AAPL] .qty")).to_have_text(str(held + 7), timeout=60_000)
    assert watcher.evaluate("window.__noReload") is True
    expect(watcher.locator("#feed li[data-type^='positions.']").first).to_be_visible()
    shot(watcher, "positions-live")
    watcher.goto(console["url"] + "/orders")
    expect(watcher.locator(f"tr[data-order-id='{order_id}'] .status").first).to_have_text("filled")
    watcher.locator(f"#history tr[data-order-id='{order_id}'] summary").click()
    expect(watcher.locator(f"#history tr[data-order-id='{order_id}'] details li").first).to_be_visible()
    shot(watcher, "orders")
    watcher.context.close()


def test_a_halt_from_the_cli_reaches_an_open_page_within_2_s_and_the_ticket_refuses(
        admin_page: Page, stack: Any, console: dict[str, Any]):
    page = admin_page
    page.goto(console["url"] + "/ticket")
    live(page)
    page.evaluate("window.__noReload = true")
    done = stack.ibkr("halt", "--reason", "console test", "--yes", IBKR_USER="console-tests")
    assert done.returncode == 0, done.stderr
    answered = time.monotonic()
    expect(page.locator("#halted-banner")).to_be_visible(timeout=2_000)
    expect(page.locator("#halted-banner")).to_contain_text("console test (by console-tests)")
    print(f"halt visible {time.monotonic() - answered:.2f} s after the CLI's answer")
    latency_ms = page.evaluate("(window.consoleLatencyMs || {})['trading.halted']")
    print(f"trading.halted: {latency_ms} ms from its publication (occurred_at) to the open page")
    assert latency_ms < 2000
    assert page.evaluate("window.__noReload") is True
    page.fill("input[name=symbol]", "AAPL")
    page.fill("input[name=quantity]", "1")
    page.select_option("select[name=order_type]", "MKT")
    page.click("#check")
    expect(page.locator("#decision, #refusal")).to_contain_text("HALT", ignore_case=True)
    expect(page.locator("#submit")).to_have_count(0)
    shot(page, "ticket-halted")

    page.goto(console["url"] + "/compliance")  # rendered by the server: the reason from compliance.status
    expect(page.locator("#halted-banner")).to_contain_text("console test (by console-tests)")
    page.fill("#switch-form input[name=reason]", "console test over")
    page.check("#switch-form input[name=confirm]")
    page.click("#switch-form button[value=resume]")
    expect(page.locator("#flash")).to_contain_text("running")
    expect(page.locator("#halted-banner")).to_have_count(0)


def test_audit_verify_shows_ok_and_the_export_downloads(admin_page: Page, console: dict[str, Any]):
    page = admin_page
    page.goto(console["url"] + "/audit")
    page.click("#verify")
    expect(page.locator("#verify-result")).to_contain_text("Chain OK")
    shot(page, "audit")
    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text()
    assert text.count("\n") >= 1 and '"seq"' in text


def test_a_viewer_sees_no_action_and_a_crafted_post_is_refused(browser: Any, stack: Any, console: dict[str, Any]):
    page = sign_in(browser, console["url"], *VIEWER)
    actions = "form[method=post]:not([action='/signout'])"
    for path in ("/positions", "/orders", "/ticket", "/compliance", "/audit", "/setup", "/"):
        page.goto(console["url"] + path)
        expect(page.locator(actions)).to_have_count(0)
    shot(page, "viewer-overview")
    token = page.locator("form[action='/signout'] input[name=csrf]").get_attribute("value")
    assert token
    sent_before = len(orders_at_cpsim(stack))
    for path, form in (("/ticket", {"action": "submit", "symbol": "AAPL", "quantity": "1", "order_type": "MKT"}),
                       ("/compliance/switch", {"action": "halt", "reason": "x", "confirm": "yes"}),
                       ("/positions/close", {"conid": "265598"}),
                       ("/session/logout", {}),
                       ("/setup", {"step": "environment", "connection": "x", "environment": "paper"})):
        refused = page.context.request.post(console["url"] + path, form={"csrf": token, **form})
        assert refused.status == 403, (path, refused.status)
    no_token = page.context.request.post(console["url"] + "/ticket", form={"action": "check", "symbol": "AAPL"})
    assert no_token.status == 403
    assert len(orders_at_cpsim(stack)) == sent_before
    page.context.close()


def test_the_setup_wizard_end_to_end(admin_page: Page, stack: Any, console: dict[str, Any]):
    """The guide's 4 steps on `ib.connections.*` (the registry), on `make run`'s second simulated login."""
    gateway = httpx_url(stack.info["sim_gateways"]["spare"])  # a login of its own: one connection per login
    page = admin_page
    page.goto(console["url"] + "/setup")
    shot(page, "setup")
    page.fill("input[name=connection]", "wizard-paper")
    page.check("input[name=environment][value=paper]")
    page.click("text=Next")
    page.fill("input[name=host]", gateway["host"])
    page.fill("input[name=port]", gateway["port"])
    page.fill("input[name=username]", "spareuser1")
    shot(page, "setup-gateway")
    page.click("text=Create")
    expect(page.locator("h2")).to_contain_text("Step 3")
    # the stack's own services serve the new connection once the registry announces it
    page.click("#verify-connection")
    checks = page.locator("#checks")
    expect(checks).to_be_visible(timeout=60_000)
    for check in ("reachable", "authenticated", "accounts", "summaries"):
        expect(checks.locator("li.ok", has_text=re.compile(rf"^\W*{check} "))).to_have_count(1)
    expect(page.locator("table")).to_contain_text(SPARE_ACCOUNT)
    assert "spareuser1" not in page.content()  # the username is never shown back
    shot(page, "setup-verify")
    page.click("text=Save and continue")
    expect(page.locator("h2")).to_contain_text("Step 4")
    boxes = page.locator("input[name=disclosure]")
    shot(page, "setup-acknowledge")
    if boxes.count():  # acknowledgments are the user's: an earlier test of this module may have given them all
        for n in range(boxes.count()):
            boxes.nth(n).check()
        page.click("text=Acknowledge and enable")
        expect(page.locator("#flash")).to_contain_text("wizard-paper is enabled", timeout=30_000)
        expect(page.locator("#connections")).to_contain_text("wizard-paper")
    else:
        expect(page.locator("main")).to_contain_text("Nothing left to acknowledge")
    listed = stack.ibkr("connections", "get", "wizard-paper", "--json", IBKR_USER="local")
    assert listed.returncode == 0 and '"state": "enabled"' in listed.stdout.replace('":"', '": "'), listed
    page.goto(console["url"] + f"/?conn={stack.info['connection']}")  # the module's other tests work on make run's own
    expect(page.locator("h1")).to_have_text("Overview")


def fill_ticket(page: Page, url: str, **fields: str) -> None:
    page.goto(url + "/ticket")
    for name, value in fields.items():
        if name in ("order_type", "side", "tif"):
            page.select_option(f"select[name={name}]", value)
        else:
            page.fill(f"input[name={name}]", value)


def test_an_ibkr_question_is_answered_on_the_orders_page_then_the_order_is_cancelled(
        admin_page: Page, stack: Any, console: dict[str, Any]):
    page, url = admin_page, console["url"]
    acknowledge_on_page(page, url)
    stack.sim("POST", "questions", {"message_ids": ["o163"]})  # the policy asks the user this one
    fill_ticket(page, url, symbol="AAPL", quantity="2", order_type="LMT", limit_price="95")  # rests below the bid
    page.click("#check")
    page.click("#submit")
    expect(page.locator("#result")).to_contain_text("confirmation_required")
    page.goto(url + "/orders")
    question = page.locator("#questions .question")
    expect(question).to_have_count(1)
    assert question.locator("li").count() >= 1  # IBKR's text, as asked
    shot(page, "orders-question")
    question.locator("button[value=confirm]").click()
    expect(page.locator("#flash")).to_contain_text("confirmed")
    headline = page.locator("#flash b").inner_text()  # confirmed: decision ..., status ..., order <id>[: ...]
    order_id = headline.split("order ", 1)[1].split(":")[0].strip()
    assert order_id.isdigit(), headline
    expect(page.locator("#questions")).to_have_count(0)
    row = page.locator(f"#open-orders tr[data-order-id='{order_id}']")
    expect(row).to_have_count(1, timeout=60_000)  # the sync reports it; the page updates live
    row.locator("form[action='/orders/cancel'] button").click()
    expect(page.locator("#flash")).to_contain_text(f"cancel of order {order_id}")
    expect(page.locator(f"#open-orders tr[data-order-id='{order_id}']")).to_have_count(0, timeout=60_000)


def test_a_question_asked_through_the_cli_shows_on_the_orders_page_and_is_confirmed_there(
        admin_page: Page, stack: Any, console: dict[str, Any]):
    page, url = admin_page, console["url"]
    acknowledge_on_page(page, url)
    stack.sim("POST", "questions", {"message_ids": ["o163"]})
    client_order_id = f"cli-question-{int(time.time() * 1000) % 10**9}"
    owner = console["admin"]["owner_user_id"]  # not this browser session: the `ibkr` command places it
    asked = stack.ibkr("place", "BUY", "1", "AAPL", "--type", "LMT", "--limit", "94", "--client-order-id",
                       client_order_id, "--json", IBKR_USER=owner)
    assert asked.returncode == 6 and '"confirmation_required"' in asked.stdout, (asked.stdout, asked.stderr)
    page.goto(url + "/orders")
    question = page.locator(f"#questions .question[data-client-order-id='{client_order_id}']")
    expect(question).to_contain_text("BUY 1 AAPL LMT limit 94")
    assert question.locator("li").first.inner_text().strip()  # IBKR's text, as asked
    question.locator("button[value=confirm]").click()
    expect(page.locator("#flash")).to_contain_text("confirmed")
    assert "status submitted" in page.locator("#flash b").inner_text()
    expect(question).to_have_count(0)
    cancelled = stack.ibkr("cancel", "--client-order-id", client_order_id, IBKR_USER=owner)
    assert cancelled.returncode == 0, cancelled.stderr


def test_close_goes_through_compliance_and_shows_its_decision(admin_page: Page, stack: Any, console: dict[str, Any]):
    page, url = admin_page, console["url"]
    acknowledge_on_page(page, url)
    open_market(stack)
    fill_ticket(page, url, symbol="AAPL", quantity="3", order_type="MKT")
    page.click("#check")
    page.click("#submit")
    expect(page.locator("#result")).to_contain_text("Submitted")
    page.goto(url + "/positions")
    row = page.locator("tr[data-symbol=AAPL]")
    expect(row).to_have_count(1, timeout=60_000)
    row.locator("form[action='/positions/close'] button").click()  # asks first (accepted)
    flash = page.locator("#flash")
    expect(flash).to_contain_text("close: decision")
    assert "block" not in flash.inner_text().split(",")[0]
    expect(flash.locator("li").first).to_be_visible()  # compliance's reasons
    shot(page, "positions-closed")
    headline = flash.locator("b").inner_text()  # close: decision ..., status submitted, order <id>
    assert "status submitted" in headline and headline.split("order ", 1)[1].split(":")[0].strip().isdigit()
    page.goto(url + "/compliance")  # the decision is in compliance's log, with its reasons
    newest = page.locator("#decisions tbody tr").first
    expect(newest).to_contain_text("AAPL")
    expect(newest).to_contain_text("PDT_NOT_APPLICABLE_INTRADAY_MARGIN_REGIME")


def test_orders_come_a_page_at_a_time_with_older_and_newer_links(admin_page: Page, stack: Any,
                                                                   console: dict[str, Any]):
    page, url = admin_page, console["url"]
    seeded = {str(950000 + i) for i in range(ORDERS_PAGE + 15)}  # more than one page, filled at the simulator
    stack.sim("POST", f"trades/{helpers.ACCOUNT}", [
        {"conid": 265598, "symbol": "AAPL", "side": "BUY", "quantity": 1, "price": 100, "order_id": order_id}
        for order_id in sorted(seeded)])
    assert stack.ibkr("sync").returncode == 0
    page.goto(url + "/orders")
    rows = page.locator("#history tbody tr[data-order-id]")
    expect(rows).to_have_count(ORDERS_PAGE)
    expect(page.locator("#orders-pager")).to_contain_text(f"page 1 · {ORDERS_PAGE} orders on this page")
    first = rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)")
    shot(page, "orders-paged")
    walked, pages = list(first), 1
    while page.locator("#orders-pager a.next").count():
        page.click("#orders-pager a.next")
        pages += 1
        expect(page.locator("#orders-pager")).to_contain_text(f"page {pages} ·")
        walked += rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)")
    assert pages >= 2 and seeded <= set(walked) and len(walked) == len(set(walked))
    expect(page.locator("#open-orders")).to_be_visible()  # the open orders stay on every page
    for back in range(pages - 1, 0, -1):
        page.click("#orders-pager a.prev")
        expect(page.locator("#orders-pager")).to_contain_text(f"page {back} ·")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)") == first
    expect(page.locator("#orders-pager a.prev")).to_have_count(0)
