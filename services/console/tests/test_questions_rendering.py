"""The Orders page's IBKR questions (templates/questions.html) as compliance.status lists them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import ibkr_console
from ibkr_console.context import make_templates
from ibkr_console.users import Account
from ibkr_contract.compliance import ComplianceStatus

TEMPLATES = Path(ibkr_console.__file__).parent / "templates"


def _status() -> ComplianceStatus:
    """Two open questions as the service answers them (a place, and a modify of a working order)."""
    return ComplianceStatus.model_validate({
        "account_id": "DU1234567", "environment": "paper", "halted": False, "account_synced": True,
        "questions": [
            {"client_order_id": "app-7", "reply_id": "r-7", "messages": ["The price is <5% off> the market."],
             "message_ids": ["o163"], "order": {"symbol": "AAPL", "side": "BUY", "quantity": "2",
                                                "order_type": "LMT", "limit_price": "95.50", "tif": "DAY"},
             "asked_at": datetime(2026, 12, 8, 14, 30, tzinfo=UTC).isoformat()},
            {"client_order_id": "app-3", "reply_id": "r-3", "message_ids": ["o383"], "action": "modify",
             "order_id": "1234", "order": {"conid": 265598, "side": "SELL", "quantity": "5", "order_type": "STP",
                                           "stop_price": "90"},
             "asked_at": datetime(2026, 12, 8, 14, 0, tzinfo=UTC).isoformat()},
        ],
        "questions_truncated": True,
    })


def _render(role: str, status: ComplianceStatus | None = None, error: str | None = None) -> str:
    env = make_templates(str(TEMPLATES)).env
    found = status or _status()
    pending = {"questions": found.questions if error is None else [], "truncated": found.questions_truncated,
               "error": error}
    return env.get_template("questions.html").render(
        pending=pending, user=Account("someone", role, "alice"), csrf="token-1")  # type: ignore[arg-type]


def test_each_question_shows_its_order_text_and_answer_buttons_for_a_trader():
    html = _render("trader")
    assert html.count('class="question"') == 2
    assert "BUY 2 AAPL LMT limit 95.50" in html and "(app-7)" in html and "2026-12-08 14:30:00 UTC" in html
    assert "The price is &lt;5% off&gt; the market." in html  # IBKR's text, escaped
    assert "modify order 1234: SELL 5 conid 265598 STP stop 90" in html and "<li>o383</li>" in html
    assert html.count('action="/orders/answer"') == 2 and html.count('name="csrf" value="token-1"') == 2
    assert 'name="reply_id" value="r-7"' in html and 'name="client_order_id" value="app-3"' in html
    assert "More questions wait" in html


def test_a_viewer_sees_the_questions_without_buttons_and_nothing_waiting_shows_nothing():
    html = _render("viewer")
    assert "BUY 2 AAPL" in html and "/orders/answer" not in html and "<button" not in html
    empty = ComplianceStatus(account_id="DU1234567", environment="paper", halted=False, account_synced=True)
    assert 'id="questions"' not in _render("trader", empty)


def test_compliance_not_answering_is_said_on_the_page():
    html = _render("trader", error="questions: NO_REPLY: compliance does not answer")
    assert 'id="questions"' in html and "compliance does not answer" in html and "/orders/answer" not in html
