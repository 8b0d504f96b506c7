"""`python -m cpsim`: HTTPS by default, plain HTTP by option, prompt shutdown on SIGTERM."""

from __future__ import annotations

import time

import httpx

from cpsim.testing import start_cpsim


def test_https_by_default_with_a_self_signed_certificate() -> None:
    with start_cpsim() as sim:
        assert sim.url.startswith("https://")
        try:
            httpx.get(sim.api_url + "/iserver/auth/status", verify=True)
            raise AssertionError("a self-signed certificate must not verify")
        except httpx.ConnectError:
            pass
        assert httpx.get(sim.api_url + "/iserver/auth/status", verify=False).status_code == 200


def test_the_temporary_certificate_folder_is_gone_once_it_listens_and_after_it_stops(tmp_path) -> None:
    with start_cpsim(env={"TMPDIR": str(tmp_path)}) as sim:
        assert httpx.get(sim.api_url + "/tickle", verify=False).status_code in (200, 401)
        assert list(tmp_path.glob("cpsim-tls-*")) == []
    assert sim.process.returncode is not None
    assert list(tmp_path.iterdir()) == []


def test_plain_http_by_option_and_prompt_stop_with_an_open_connection() -> None:
    sim = start_cpsim(https=False)
    client = httpx.Client()
    assert client.post(sim.url + "/v1/api/tickle").status_code == 200
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 5
    assert sim.process.returncode is not None
    client.close()


def test_unknown_paths_are_404_not_a_traceback() -> None:
    with start_cpsim(https=False) as sim:
        r = httpx.get(sim.api_url + "/no/such/endpoint")
        assert r.status_code == 404 and "Traceback" not in r.text


def test_defaults_are_exchange_hours_and_latency_and_older_options_still_parse() -> None:
    from cpsim.__main__ import parse_args, parse_gateways

    default = parse_args([])
    assert (default.port, default.market_hours, default.latency, default.name) == (5000, "exchange", True, "paper")
    old = parse_args(["--port", "0", "--market-hours", "rth", "--no-walk", "--penalty", "0"])
    assert (old.port, old.market_hours, old.walk, old.penalty_s) == (0, "exchange", False, 0)
    fast = parse_args(["--no-latency", "--market-hours", "always", "--latency-scale", "0.5"])
    assert (fast.latency, fast.market_hours, fast.latency_scale) == (False, "always", 0.5)
    two = parse_gateways(["--gateway", "paper:5000", "--gateway", "live:5001:U1,U2", "--no-latency"])
    assert [(c.name, c.port, c.accounts, c.username, c.paper, c.latency) for c in two] == [
        ("paper", 5000, ("DU1234567",), "paperuser1", True, False),
        ("live", 5001, ("U1", "U2"), "liveuser1", False, False)]
