"""Fixtures: one cpsim subprocess (HTTPS) per test session, reset before each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cpsim.testing import CpsimHandle, start_cpsim


@pytest.fixture(scope="session")
def sim() -> Iterator[CpsimHandle]:
    with start_cpsim(extra_args=["--no-walk"]) as handle:
        yield handle


@pytest.fixture
def http(sim: CpsimHandle) -> Iterator[httpx.Client]:
    """A client on a freshly reset simulator with the rate limits lifted."""
    with httpx.Client(base_url=sim.url, verify=False, timeout=10) as client:
        assert client.post("/sim/reset").status_code == 200
        assert client.post("/sim/limits", json={"enabled": False}).status_code == 200
        yield client


@pytest.fixture
def ready(http: httpx.Client) -> httpx.Client:
    """As `http`, with /iserver/accounts and /portfolio/accounts already queried."""
    assert http.get("/v1/api/iserver/accounts").status_code == 200
    assert http.get("/v1/api/portfolio/accounts").status_code == 200
    return http
