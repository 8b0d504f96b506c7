"""Session quirks over real HTTPS: 401, no bridge, ssodh/init, competing, idle, expiry, 411, malformed JSON."""

from __future__ import annotations

import httpx

from cpsim.testing import ACCOUNT as ACCT


def secs(ms: int) -> int:
    """Whole seconds of an `ssoExpires` (the sim clock runs on between two requests)."""
    return round(ms / 1000)


def test_tickle_reports_session_sso_expires_and_collission(http: httpx.Client) -> None:
    body = http.post("/v1/api/tickle").json()
    assert len(body["session"]) == 32
    assert body["collission"] is False
    assert 90_000 <= body["ssoExpires"] <= 600_000  # minutes, as gateways report it, not the 24 h login
    assert body["iserver"]["authStatus"]["authenticated"] is True


def test_sso_expires_slides_with_each_tickle_and_counts_down_between(http: httpx.Client) -> None:
    first = http.post("/v1/api/tickle").json()["ssoExpires"]
    http.post("/sim/clock", json={"advance_s": 120})
    between = http.get("/sim/state").json()["session"]["sso_expires_ms"]
    second = http.post("/v1/api/tickle").json()["ssoExpires"]
    http.post("/sim/clock", json={"advance_s": 60})
    validated = http.get("/v1/api/sso/validate").json()["EXPIRES"]
    assert secs(first) == secs(second) == secs(validated) == 300  # extended to the idle end (5 min) by each call
    assert secs(between) == 180


def test_without_tickle_or_validate_the_sso_token_lapses_after_ten_minutes(http: httpx.Client) -> None:
    http.post("/v1/api/tickle")
    for _ in range(4):  # other requests every 2 minutes keep the idle timer, not the SSO token
        http.post("/sim/clock", json={"advance_s": 120})
        assert http.get("/v1/api/portfolio/accounts").status_code == 200
    left = http.get("/sim/state").json()["session"]["sso_expires_ms"]
    http.post("/sim/clock", json={"advance_s": 120})
    assert secs(left) == 120
    assert http.get("/v1/api/portfolio/accounts").status_code == 401
    assert http.get("/sim/state").json()["session"]["ended_reason"] == "sso expired"


def test_sso_validate_extends_the_sso_token(http: httpx.Client) -> None:
    http.post("/v1/api/tickle")
    for _ in range(4):
        http.post("/sim/clock", json={"advance_s": 120})
        http.get("/v1/api/portfolio/accounts")
    assert secs(http.get("/v1/api/sso/validate").json()["EXPIRES"]) == 300
    for _ in range(2):
        http.post("/sim/clock", json={"advance_s": 120})
        assert http.get("/v1/api/portfolio/accounts").status_code == 200


def test_logged_out_gateway_answers_401_text_but_auth_status_still_answers(http: httpx.Client) -> None:
    http.post("/sim/logout")
    r = http.get("/v1/api/portfolio/accounts")
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/plain")
    assert http.post("/v1/api/tickle").status_code == 401
    status = http.post("/v1/api/iserver/auth/status").json()
    assert (status["authenticated"], status["connected"]) == (False, False)


def test_read_only_session_serves_portfolio_but_iserver_says_no_bridge(http: httpx.Client) -> None:
    http.post("/sim/login", json={"brokerage": False})
    assert http.get("/v1/api/portfolio/accounts").status_code == 200
    r = http.get("/v1/api/iserver/accounts")
    assert r.status_code == 400
    assert r.json() == {"error": "Bad Request: no bridge", "statusCode": 400}
    status = http.post("/v1/api/iserver/auth/status").json()
    assert (status["authenticated"], status["connected"]) == (False, True)


def test_ssodh_init_opens_the_brokerage_session_and_publish_false_is_500(http: httpx.Client) -> None:
    http.post("/sim/login", json={"brokerage": False})
    assert http.post("/v1/api/iserver/auth/ssodh/init", json={"publish": False, "compete": True}).status_code == 500
    body = http.post("/v1/api/iserver/auth/ssodh/init", json={"publish": True, "compete": True}).json()
    assert body["authenticated"] is True and body["connected"] is True
    assert http.get("/v1/api/iserver/accounts").status_code == 200


def test_competing_session_fails_iserver_until_ssodh_init_competes(http: httpx.Client) -> None:
    http.post("/sim/competing", json={"competing": True})
    status = http.post("/v1/api/iserver/auth/status").json()
    assert status["competing"] is True and status["authenticated"] is False
    assert http.get("/v1/api/iserver/accounts").status_code == 400
    http.post("/v1/api/iserver/auth/ssodh/init", json={"publish": True, "compete": False})
    assert http.post("/v1/api/iserver/auth/status").json()["competing"] is True
    http.post("/v1/api/iserver/auth/ssodh/init", json={"publish": True, "compete": True})
    assert http.post("/v1/api/iserver/auth/status").json()["competing"] is False
    assert http.get("/v1/api/iserver/accounts").status_code == 200


def test_five_idle_minutes_end_the_session_then_401(http: httpx.Client) -> None:
    http.post("/v1/api/tickle")
    http.post("/sim/clock", json={"advance_s": 301})
    assert http.post("/v1/api/iserver/auth/status").json()["authenticated"] is False
    assert http.get("/v1/api/portfolio/accounts").status_code == 401


def test_tickle_every_minute_keeps_the_session(http: httpx.Client) -> None:
    for _ in range(8):
        http.post("/sim/clock", json={"advance_s": 60})
        assert http.post("/v1/api/tickle").status_code == 200
    assert http.post("/v1/api/iserver/auth/status").json()["authenticated"] is True


def test_crossing_new_york_midnight_ends_brokerage_session(http: httpx.Client) -> None:
    http.post("/sim/clock", json={"now": "2026-03-03T04:58:00Z"})  # 23:58 New York
    http.post("/sim/login")
    http.post("/sim/clock", json={"advance_s": 180})
    status = http.post("/v1/api/iserver/auth/status").json()
    assert (status["authenticated"], status["connected"]) == (False, True)
    assert http.get("/v1/api/iserver/accounts").status_code == 400


def test_session_ends_after_24_hours(http: httpx.Client) -> None:
    http.post("/sim/latency", json={"enabled": False})  # ~740 calls: the real time they take moves the sim clock
    http.post("/sim/clock", json={"now": "2026-03-03T14:00:00Z"})
    http.post("/sim/login")
    seen = []
    for step in [240] * (24 * 15 - 3) + [60] * 13:  # a tickle every 4 minutes, every minute at the end
        http.post("/sim/clock", json={"advance_s": step})
        r = http.post("/v1/api/tickle")
        if r.status_code == 401:
            break
        seen.append(secs(r.json()["ssoExpires"]))
        http.post("/v1/api/iserver/auth/ssodh/init", json={"publish": True, "compete": True})
    state = http.get("/sim/state").json()
    assert state["session"]["ended_reason"] == "max session age"
    assert set(seen[:-5]) == {300}  # sliding: every tickle extends it
    countdown = [300, 240, 180, 120, 60]  # then it counts down to the 24 h cap (less the real time spent)
    assert all(0 <= want - got <= 5 for got, want in zip(seen[-5:], countdown, strict=True)), seen[-5:]


def test_iserver_accounts_must_come_first(http: httpx.Client) -> None:
    r = http.get("/v1/api/iserver/marketdata/snapshot", params={"conids": "265598", "fields": "31"})
    assert r.json() == {"error": "Bad Request: Please query /accounts first", "statusCode": 400}
    assert http.get(f"/v1/api/iserver/account/{ACCT}/summary").status_code == 400
    http.get("/v1/api/iserver/accounts")
    assert http.get(f"/v1/api/iserver/account/{ACCT}/summary").status_code == 200


def test_portfolio_accounts_must_come_before_other_portfolio_calls(http: httpx.Client) -> None:
    assert http.get(f"/v1/api/portfolio/{ACCT}/positions/0").status_code == 400
    http.get("/v1/api/portfolio/accounts")
    assert http.get(f"/v1/api/portfolio/{ACCT}/positions/0").status_code == 200


def test_post_without_content_length_is_411(http: httpx.Client, sim: object) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b"{}"

    r = http.post("/v1/api/tickle", content=chunks())
    assert r.status_code != 411  # chunked bodies carry Transfer-Encoding
    req = http.build_request("POST", "/v1/api/tickle")
    del req.headers["content-length"]
    assert http.send(req).status_code == 411


def test_malformed_json_is_ibkr_400_not_a_traceback(ready: httpx.Client) -> None:
    r = ready.post(
        f"/v1/api/iserver/account/{ACCT}/orders", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"].startswith("Bad Request") and r.json()["statusCode"] == 400


def test_unknown_account_is_ibkr_400(ready: httpx.Client) -> None:
    r = ready.get("/v1/api/iserver/account/U0000000/summary")
    assert r.json() == {"error": "Bad Request: accountId is not valid: U0000000", "statusCode": 400}


def test_logout_ends_everything(http: httpx.Client) -> None:
    assert http.post("/v1/api/logout").json() == {"status": True}
    assert http.post("/v1/api/tickle").status_code == 401


def test_trailing_slash_and_portal_alias_are_accepted(ready: httpx.Client) -> None:
    assert ready.get("/v1/api/iserver/account/trades/").status_code == 200
    assert ready.get("/v1/portal/sso/validate").json()["RESULT"] is True


def test_reauthenticate_reopens_the_brokerage_session(http: httpx.Client) -> None:
    http.post("/sim/login", json={"brokerage": False})
    assert http.post("/v1/api/iserver/reauthenticate").json() == {"message": "triggered"}
    assert http.post("/v1/api/iserver/auth/status").json()["authenticated"] is True


def test_read_only_tickle_answers_with_brokerage_not_authenticated(http: httpx.Client) -> None:
    http.post("/sim/login", json={"brokerage": False})
    auth = http.post("/v1/api/tickle").json()["iserver"]["authStatus"]
    assert (auth["authenticated"], auth["connected"]) == (False, True)
