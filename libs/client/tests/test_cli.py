"""`ibkr` against `make run`'s stack: every command, its --json form, the failures, and a question in a pty."""

import json
import os
import pty
import select
import subprocess
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from .stack_helpers import ACCOUNT, IBKR, Stack, clean_env, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
USER = "cli-tests"


@pytest.fixture(scope="module")
def cli(stack: Stack) -> Stack:
    """The module's stack, with the tests' user acknowledged and a filled AAPL position to show."""
    done = stack.ibkr("disclosures", "acknowledge", "options_risk", "day_trading_risk", IBKR_USER=USER)
    assert done.returncode == 0, done.stderr
    placed = stack.ibkr("place", "BUY", "10", "AAPL", "--json", IBKR_USER=USER)
    assert placed.returncode == 0, placed.stderr
    order_id = json.loads(placed.stdout)["order_id"]
    wait_until(lambda: any(o["order_id"] == order_id
                           for o in run_json(stack, "orders", "--status", "filled")["orders"]))
    return stack


def run(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return stack.ibkr(*args, IBKR_USER=USER, **env)


def run_json(stack: Stack, *args: str) -> dict:
    done = run(stack, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def one_clear_line(done: subprocess.CompletedProcess[str]) -> str:
    """A failure's stderr: exactly one line starting `ibkr: `, and never a traceback."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ibkr: "), done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    return lines[0]


def test_status_shows_session_expiry_sync_halt_and_every_service(cli: Stack):
    done = run(cli, "status")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for words in ("session", "authenticated", "expires", "maintenance", "last sync", ACCOUNT, "trading", "running",
                  "warnings", "gateway-bridge", "session-keeper", "sync-worker", "compliance", "audit"):
        assert words in text, words
    assert "\x1b[" not in text  # no colour when not a terminal
    data = run_json(cli, "status")
    assert data["session"]["status"] == "authenticated" and data["session"]["seconds_left"] > 0
    assert data["halted"] is False and ACCOUNT in data["accounts"] and data["last_sync_at"]
    assert all("version" in answer for answer in data["services"].values()), data["services"]


def test_account_shows_the_summary_with_plain_decimals(cli: Stack):
    done = run(cli, "account")
    assert done.returncode == 0 and "net_liquidation" in done.stdout and "buying_power" in done.stdout
    data = run_json(cli, "account")
    assert data["account_id"] == ACCOUNT
    assert "E+" not in json.dumps(data)
    for name in ("cash", "net_liquidation", "buying_power"):
        assert data[name] == format(Decimal(data[name]), "f"), (name, data[name])


def test_positions_show_a_table_with_pnl(cli: Stack):
    done = run(cli, "positions")
    assert done.returncode == 0, done.stderr
    assert "unrealized P&L" in done.stdout and "AAPL" in done.stdout and "total" in done.stdout
    data = run_json(cli, "positions")
    aapl = next(p for p in data["positions"] if p["symbol"] == "AAPL")
    assert float(aapl["quantity"]) >= 10 and "unrealized_pnl" in aapl


def test_orders_show_open_ones_and_history_with_status_history(cli: Stack):
    placed = run_json(cli, "place", "BUY", "1", "AAPL", "--type", "LMT", "--limit", "98.5")
    order_id = placed["order_id"]
    assert placed["status"] == "submitted"
    open_orders = wait_until(lambda: [o for o in run_json(cli, "orders")["orders"] if o["order_id"] == order_id])
    assert open_orders[0]["tif"] == "DAY" and open_orders[0]["limit_price"] == "98.5"
    table = run(cli, "orders")
    assert order_id in table.stdout and "submitted" in table.stdout
    history = run(cli, "orders", "--all", "--history")
    assert history.returncode == 0 and "filled" in history.stdout
    every = run_json(cli, "orders", "--all")
    assert any(o["status_history"] for o in every["orders"])
    cancelled = run(cli, "cancel", order_id)
    assert cancelled.returncode == 0 and order_id in cancelled.stdout, cancelled.stderr


def test_orders_page_with_page_size_and_the_cursor_the_table_prints(cli: Stack):
    cli.sim("POST", f"trades/{ACCOUNT}", [{"conid": 265598, "symbol": "AAPL", "side": "BUY", "quantity": 1,
                                           "price": 100, "order_id": str(940000 + i)} for i in range(3)])
    assert run(cli, "sync").returncode == 0
    first = run_json(cli, "orders", "--all", "--page-size", "1")
    assert len(first["orders"]) == 1 and first["next_cursor"], first
    table = run(cli, "orders", "--all", "--page-size", "1")
    assert f"more: --cursor {first['next_cursor']}" in table.stdout
    second = run_json(cli, "orders", "--all", "--page-size", "1", "--cursor", first["next_cursor"])
    assert second["orders"][0]["order_id"] != first["orders"][0]["order_id"]
    assert len(run_json(cli, "orders", "--all", "--limit", "2")["orders"]) == 2
    bad = run(cli, "orders", "--cursor", "garbage!")
    assert bad.returncode != 0 and "cursor" in one_clear_line(bad)


def test_check_shows_the_decision_and_each_reason_with_its_severity(cli: Stack):
    done = run(cli, "check", "BUY", "1", "AAPL")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("decision ") and "warn  MARKET_ORDER_PRICE_ESTIMATED" in done.stdout
    data = run_json(cli, "check", "BUY", "1", "AAPL")
    assert data["decision"] in ("allow", "warn") and all(r["severity"] in ("allow", "warn", "block")
                                                        for r in data["reasons"])
    blocked = cli.ibkr("check", "BUY", "1", "AAPL", IBKR_USER="never-acknowledged")
    assert blocked.returncode == 5 and "block DISCLOSURES_NOT_ACKNOWLEDGED" in " ".join(blocked.stdout.split())


def test_place_prints_the_decision_and_a_refused_order_one_line(cli: Stack):
    done = run(cli, "place", "BUY", "1", "AAPL")
    assert done.returncode == 0, done.stderr
    assert "decision" in done.stdout and "status submitted" in done.stdout
    refused = cli.ibkr("place", "BUY", "1", "AAPL", IBKR_USER="never-acknowledged")
    assert refused.returncode == 5
    line = one_clear_line(refused)
    assert "order refused (COMPLIANCE_BLOCKED): DISCLOSURES_NOT_ACKNOWLEDGED" in line
    assert "IBKR_DAY_TRADES_UNLIMITED" not in line  # only the blocking reasons
    as_json = cli.ibkr("place", "BUY", "1", "AAPL", "--json", IBKR_USER="never-acknowledged")
    assert as_json.returncode == 5 and "order refused" in one_clear_line(as_json)


def test_a_question_without_a_terminal_waits_for_ibkr_confirm(cli: Stack):
    cli.sim("POST", "questions", {"message_ids": ["o163"]})
    client_order_id = f"cli-{uuid.uuid4().hex[:12]}"
    asked = run(cli, "place", "BUY", "1", "AAPL", "--type", "LMT", "--limit", "98", "--client-order-id",
                client_order_id)
    assert asked.returncode == 6
    assert "[o163]" in asked.stdout and "IBKR asks" in asked.stdout
    line = one_clear_line(asked)
    reply_id = line.split(f"ibkr confirm {client_order_id} ", 1)[1].split("`", 1)[0]
    confirmed = run_json(cli, "confirm", client_order_id, reply_id)
    assert confirmed["status"] == "submitted" and confirmed["order_id"]
    assert run(cli, "cancel", "--client-order-id", client_order_id).returncode == 0


def test_confirm_accepts_named_questions_in_advance_and_only_those(cli: Stack):
    cli.sim("POST", "questions", {"message_ids": ["o163"]})
    accepted = run(cli, "place", "BUY", "1", "AAPL", "--type", "LMT", "--limit", "98", "--confirm", "o163")
    assert accepted.returncode == 0, accepted.stderr
    assert "accepted in advance by cli-tests (--confirm o163)" in accepted.stdout
    assert "status submitted" in accepted.stdout
    cli.sim("POST", "questions", {"message_ids": ["o383"]})
    other = run(cli, "place", "BUY", "1", "AAPL", "--type", "LMT", "--limit", "98", "--confirm", "o163", "--json")
    assert other.returncode == 6 and "(o383)" in one_clear_line(other)
    assert json.loads(other.stdout)["status"] == "confirmation_required"


def ask_a_question(cli: Stack) -> tuple[str, str]:
    """Place BUY 1 AAPL LMT 98 that IBKR asks o163 about: its client order id and the question's reply id."""
    cli.sim("POST", "questions", {"message_ids": ["o163"]})
    client_order_id = f"cli-{uuid.uuid4().hex[:12]}"
    asked = run(cli, "place", "BUY", "1", "AAPL", "--type", "LMT", "--limit", "98", "--client-order-id",
                client_order_id, "--json")
    assert asked.returncode == 6, asked.stderr
    return client_order_id, json.loads(asked.stdout)["confirmation"]["reply_id"]


def test_declining_a_question_refuses_the_order(cli: Stack):
    client_order_id, reply_id = ask_a_question(cli)
    declined = run(cli, "confirm", client_order_id, reply_id, "--no")
    assert declined.returncode == 5 and "status rejected" in declined.stdout
    assert "declined by cli-tests" in one_clear_line(declined)


def test_compliance_status_lists_a_question_asked_elsewhere_until_answered_and_the_halt_reason(cli: Stack):
    client_order_id, reply_id = ask_a_question(cli)
    shown = run(cli, "compliance", "status")
    assert shown.returncode == 0, shown.stderr
    assert client_order_id in shown.stdout and reply_id in shown.stdout and "BUY 1 AAPL LMT 98" in shown.stdout
    assert "ibkr confirm CLIENT_ORDER_ID REPLY_ID" in shown.stdout and "running" in shown.stdout
    [listed] = [q for q in run_json(cli, "compliance", "status")["questions"]
                if q["client_order_id"] == client_order_id]
    assert (listed["reply_id"], listed["message_ids"], listed["order"]["limit_price"]) == (reply_id, ["o163"], "98")
    assert run(cli, "confirm", client_order_id, reply_id, "--no").returncode == 5
    assert client_order_id not in [q["client_order_id"] for q in run_json(cli, "compliance", "status")["questions"]]
    assert run(cli, "halt", "--reason", "questions drill", "--yes").returncode == 0
    try:
        halted = run(cli, "compliance", "status")
        data = run_json(cli, "compliance", "status")
    finally:
        assert run(cli, "resume", "--reason", "drill over", "--yes").returncode == 0
    assert "HALTED: questions drill (by cli-tests" in halted.stdout
    assert data["halted"] is True and (data["halt"]["reason"], data["halt"]["changed_by"]) == (
        "questions drill", USER)
    assert run_json(cli, "compliance", "status")["halt"] is None


def test_modify_changes_an_open_order(cli: Stack):
    order_id = run_json(cli, "place", "BUY", "1", "AAPL", "--type", "LMT", "--limit", "98")["order_id"]
    modified = run_json(cli, "modify", order_id, "--limit", "98.25")
    assert modified["status"] == "submitted", modified
    assert run(cli, "modify", order_id).returncode == 2
    shown = wait_until(lambda: [o for o in run_json(cli, "orders")["orders"]
                                if o["order_id"] == order_id and o["limit_price"] == "98.25"])
    assert shown
    cancelled = run_json(cli, "cancel", order_id)
    assert cancelled["status"]


def test_halt_asks_for_a_reason_and_confirmation_then_refuses_opening_orders(cli: Stack):
    no_reason = run(cli, "halt")
    assert no_reason.returncode == 2 and "--reason" in one_clear_line(no_reason)
    unconfirmed = run(cli, "halt", "--reason", "drill")
    assert unconfirmed.returncode == 2 and "--yes" in one_clear_line(unconfirmed)
    halted = run_json(cli, "halt", "--reason", "drill", "--yes")
    try:
        assert halted == {"halted": True, "reason": "drill"}
        assert run_json(cli, "status")["halted"] is True
        refused = run(cli, "place", "BUY", "1", "AAPL")
        assert refused.returncode == 5 and "TRADING_HALTED" in one_clear_line(refused)
    finally:
        resumed = run(cli, "resume", "--reason", "drill over", "--yes")
    assert resumed.returncode == 0 and "running" in resumed.stdout


def test_disclosures_list_and_acknowledge(cli: Stack):
    listed = run(cli, "disclosures", "list")
    assert listed.returncode == 0 and "options_risk" in listed.stdout
    data = run_json(cli, "disclosures", "list")
    assert data["missing_acknowledgments"] == [] and all(d["acknowledged"] for d in data["disclosures"])
    fresh = cli.ibkr("disclosures", "acknowledge", "options_risk", "--json", IBKR_USER=f"new-{uuid.uuid4().hex[:6]}")
    assert fresh.returncode == 0 and json.loads(fresh.stdout)["missing_acknowledgments"] == ["day_trading_risk"]
    unknown = run(cli, "disclosures", "acknowledge", "no_such_thing")
    assert unknown.returncode == 2 and "no_such_thing" in one_clear_line(unknown)


def test_audit_verify_and_export_as_jsonl_and_csv(cli: Stack, tmp_path: Path):
    verified = run(cli, "audit", "verify")
    assert verified.returncode == 0 and "audit chain intact" in verified.stdout
    assert run_json(cli, "audit", "verify")["ok"] is True
    jsonl, csv_file = tmp_path / "audit.jsonl", tmp_path / "audit.csv"
    assert run(cli, "audit", "export", "-o", str(jsonl)).returncode == 0
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert rows and [r["seq"] for r in rows] == sorted((r["seq"] for r in rows), reverse=True)
    assert run(cli, "audit", "export", "--format", "csv", "--type", "trading", "-o", str(csv_file)).returncode == 0
    lines = csv_file.read_text().splitlines()
    assert lines[0].startswith("seq,stored_at,occurred_at,type") and all(",trading." in line for line in lines[1:])
    bad = run(cli, "audit", "export", "--format", "xml")
    assert bad.returncode == 2 and "jsonl or csv" in one_clear_line(bad)


def test_events_tail_follows_live_events_filtered_by_type(cli: Stack):
    since = datetime.now(UTC).isoformat()  # from now on, however long the command takes to start
    with subprocess.Popen([str(IBKR), "events", "tail", "--type", "trading", "--count", "2", "--json", "--from",
                           since], cwd=cli.root, env=clean_env(IBKR_USER=USER), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as tail:
        run(cli, "halt", "--reason", "tail", "--yes")
        run(cli, "resume", "--reason", "tail over", "--yes")
        out, err = tail.communicate(timeout=30)
    assert tail.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events] == ["trading.halted", "trading.resumed"]
    text = run(cli, "events", "tail", "--from", "all", "--type", "trading.halted", "--count", "1")
    assert text.returncode == 0 and "trading.halted" in text.stdout


def test_sync_reads_the_account_now(cli: Stack):
    done = run(cli, "sync")
    assert done.returncode == 0 and "synced at" in done.stdout
    assert run_json(cli, "sync")["accounts"][0]["account_id"] == ACCOUNT


def test_a_missing_stack_a_bad_argument_and_a_timeout_each_give_one_line(cli: Stack, tmp_path: Path):
    missing = cli.ibkr("status", cwd=tmp_path)
    assert missing.returncode == 3 and "no running stack found" in one_clear_line(missing)
    unreachable = cli.ibkr("--nats-url", "nats://127.0.0.1:1", "account", cwd=tmp_path)
    assert unreachable.returncode == 3 and "cannot reach NATS" in one_clear_line(unreachable)
    for args, words in ((("place", "BUY", "x", "AAPL"), "quantity"), (("place", "BUY", "1"), "instrument"),
                        (("orders", "--limit", "0"), "--limit"), (("nosuch",), "nosuch"),
                        (("place", "BUY", "1", "AAPL", "--type", "FOO"), "order_type")):
        bad = run(cli, *args)
        assert bad.returncode == 2, (args, bad.stderr)
        assert words in one_clear_line(bad)
    cli.sim("POST", "faults", {"path_glob": "/iserver/accounts", "delay_ms": 4000, "count": 3})
    try:
        slow = run(cli, "--timeout", "1", "sync")
    finally:
        cli.sim("DELETE", "faults")
    assert slow.returncode == 4 and "no answer to sync.trigger from sync-worker within 1 s" in one_clear_line(slow)
    debug = cli.ibkr("--debug", "status", cwd=tmp_path)
    assert debug.returncode == 3 and "Traceback" in debug.stderr


def test_place_asks_ibkr_s_question_in_a_real_terminal(cli: Stack):
    cli.sim("POST", "questions", {"message_ids": ["o163"]})
    master, slave = pty.openpty()
    env = clean_env(IBKR_USER=USER, TERM="xterm-256color", COLUMNS="120")
    env.pop("NO_COLOR")
    proc = subprocess.Popen([str(IBKR), "place", "BUY", "1", "AAPL", "--type", "LMT", "--limit", "98"],
                            cwd=cli.root, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    screen = b""
    try:
        screen = read_until(master, b"Accept this and place the order?", proc)
        os.write(master, b"y\n")
        screen += read_until(master, b"status", proc)
        assert proc.wait(timeout=30) == 0
        screen += drain(master)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = screen.decode(errors="replace")
    assert "IBKR asks before it accepts the order" in text and "o163" in text
    assert "submitted" in text and "\x1b[" in text  # colour on a terminal


def read_until(fd: int, needle: bytes, proc: subprocess.Popen, timeout: float = 60) -> bytes:
    """What the terminal shows until `needle` appears."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {needle!r} in the terminal: {seen.decode(errors='replace')}")
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"terminal closed (exit {proc.poll()}): {seen.decode(errors='replace')}")
            seen += chunk
    return seen


def drain(fd: int) -> bytes:
    seen = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    return seen
