"""pytest plugin of ibkr-stack (loaded with `-p ibkr_testkit.plugin`): real servers, per-run names.

Under pytest-xdist every worker is a process of its own with its own session fixtures: its own NATS,
PostgreSQL and cpsim (unless NATS_URL / DATABASE_URL name shared ones), and names that carry the
worker's id, so two workers never share a connection id, a stream, a database or a role.
Under `CI=true` a skipped test fails, except the `live` ones (no real gateway in CI): nothing skips
unnoticed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest

from ibkr_common.subjects import Subjects
from ibkr_testkit.servers import ServerUnavailable, docker_available, start_nats, start_postgres


@dataclass(frozen=True)
class RunNames:
    """Names unique to this test run, so runs never see each other's data."""

    run_id: str

    @property
    def conn(self) -> str:
        return f"t{self.run_id}"

    @property
    def stream(self) -> str:
        return f"IBKR_EVENTS_T{self.run_id.upper()}"

    @property
    def stream_subjects(self) -> str:
        return Subjects(self.conn).events_all

    @property
    def database(self) -> str:
        return f"ibkr_test_{self.run_id}"

    @property
    def app_role(self) -> str:
        return f"ibkr_app_{self.run_id}"


def _unavailable(what: str, exc: Exception) -> None:
    pytest.fail(f"{what} is not available and could not be started: {exc}", pytrace=False)


def worker_id() -> str:
    """This process's pytest-xdist worker id (`gw0`, `gw1`, ...), or `main` without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def new_run_id() -> str:
    """A fresh run id: 8 random hex digits, then the xdist worker's number (`w0`, `w1`, ...) if any."""
    worker = worker_id()
    suffix = f"w{worker.removeprefix('gw')}" if worker.startswith("gw") else ""
    return uuid.uuid4().hex[:8] + suffix


@pytest.fixture(scope="session")
def run_names() -> RunNames:
    """Per-run (and per-worker) connection id, stream, database and role names."""
    return RunNames(new_run_id())


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI=true, a skip (other than a `live` test's, or an expected failure) is a failure."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not (report.skipped and _ci()) or item.get_closest_marker("live") or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, where nothing may skip: {reason}"


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """A NATS server with JetStream: NATS_URL, a container, or nats-server from the wheel."""
    if os.environ.get("NATS_URL"):
        yield os.environ["NATS_URL"]
        return
    if docker_available():
        from ibkr_testkit.servers import nats_container

        with nats_container() as container:
            yield container.nats_uri()  # type: ignore[attr-defined]
        return
    try:
        server = start_nats()
    except (ServerUnavailable, OSError) as exc:
        _unavailable("NATS", exc)
        raise
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server URL with rights to create databases and roles."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        yield url
        return
    if docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg") as container:
            yield container.get_connection_url()
        return
    try:
        server = start_postgres()
    except (ServerUnavailable, OSError) as exc:
        _unavailable("PostgreSQL", exc)
        raise
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def make_database(postgres_admin_url: str, run_names: RunNames) -> Iterator[Callable[[str], str]]:
    """Factory: a fresh, migrated database named after the run; returns its app-role URL."""
    from ibkr_testkit.databases import DatabaseFactory

    factory = DatabaseFactory(postgres_admin_url, run_names)
    try:
        yield factory.create
    finally:
        factory.drop_all()


@pytest.fixture(scope="session")
def database_url(make_database: Callable[[str], str]) -> str:
    """The run's migrated PostgreSQL database, connected as a role without BYPASSRLS."""
    return make_database("main")


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    """A fresh, migrated SQLite database file for this test."""
    from ibkr_common.db.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path}/ibkr.db"
    upgrade(url)
    return url


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[object]:
    """A plain nats-py client to the test server."""
    import nats

    client = await nats.connect(nats_url, connect_timeout=5)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture(scope="session")
def cpsim_url() -> Iterator[str]:
    """A cpsim (HTTPS) started for this run; `/sim/reset` it in tests that need a clean state.

    Its market is open around the clock (`/sim/reset` keeps it so), so a test that needs a fill does
    not depend on the time of day; a test about exchange hours posts `/sim/market_hours {"mode":
    "exchange"}`. Latency is on, as in `make run`; `cpsim_no_latency` turns it off for one test.
    """
    from cpsim.testing import start_cpsim

    handle = start_cpsim(market_hours="always")
    try:
        yield handle.url
    finally:
        handle.stop()


@pytest.fixture
def cpsim_no_latency(cpsim_url: str) -> Iterator[str]:
    """`cpsim_url` answering at once for this test (a test that asks for speed); latency back on after.

    Ask for it after any fixture that resets the simulator: `/sim/reset` brings the latency back.
    """
    import httpx

    def latency(enabled: bool) -> None:
        # the test's own cpsim, with the self-signed certificate it made at start
        httpx.post(f"{cpsim_url}/sim/latency", json={"enabled": enabled}, verify=False,  # noqa: S501
                   timeout=10).raise_for_status()

    latency(False)
    try:
        yield cpsim_url
    finally:
        latency(True)


@pytest.fixture(scope="session")
def cpsim_gateways() -> Iterator[dict[str, str]]:
    """One cpsim process serving two gateways, name -> URL: `paper` (account DU1234567, login
    paperuser1) and `live` (account U1234567, login liveuser1), each with its own session, orders,
    limits, request log and `/sim` API. Market open around the clock, latency on (as `cpsim_url`)."""
    from cpsim.testing import start_cpsim

    handle = start_cpsim(gateways=["paper:0", "live:0:U1234567"], market_hours="always")
    try:
        yield {name: gw.url for name, gw in handle.gateways.items()}
    finally:
        handle.stop()
