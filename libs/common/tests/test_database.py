from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from ibkr_common.db.engine import make_engine, make_sessionmaker, user_transaction
from ibkr_common.db.migrate import current_revision, upgrade
from ibkr_common.db.models import ActivityLog, Position

pytestmark = pytest.mark.connected
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _position(user: str, conid: int, qty: str = "100") -> Position:
    return Position(user_id=user, connection="paper", account_id="DU1234567", conid=conid, symbol="AAPL",
                    sec_type="STK", quantity=Decimal(qty), avg_cost=Decimal("150.123456"), content_hash="h",
                    opened_at=NOW, synced_at=NOW, updated_at=NOW)


async def test_rls_admits_only_the_sessions_user_on_postgres(database_url):
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    async with user_transaction(sessions, "alice") as s:
        s.add(_position("alice", 1001))
    async with user_transaction(sessions, "bob") as s:
        s.add(_position("bob", 1002))
    async with user_transaction(sessions, "alice") as s:
        seen = (await s.execute(select(Position.conid).where(Position.conid.in_([1001, 1002])))).scalars().all()
    assert seen == [1001]
    with pytest.raises(DBAPIError):
        async with user_transaction(sessions, "alice") as s:
            s.add(_position("mallory", 1003))
    async with sessions() as s:  # no user set: nothing visible
        rows = (await s.execute(select(Position))).scalars().all()
    assert rows == []
    await engine.dispose()


async def test_service_role_is_neither_superuser_nor_bypassrls(database_url):
    engine = make_engine(database_url)
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"))).one()
    await engine.dispose()
    assert tuple(row) == (False, False)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_money_stays_exact_and_times_stay_aware(backend, sqlite_url, database_url):
    url = sqlite_url if backend == "sqlite" else database_url
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with user_transaction(sessions, "carol") as s:
        s.add(_position("carol", 2001, "0.1"))
    async with user_transaction(sessions, "carol") as s:
        pos = (await s.execute(select(Position).where(Position.conid == 2001))).scalar_one()
    await engine.dispose()
    assert pos.quantity == Decimal("0.1")
    assert pos.avg_cost == Decimal("150.123456")
    assert pos.synced_at == NOW and pos.synced_at.tzinfo is not None


async def test_floats_for_money_are_refused(sqlite_url):
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    with pytest.raises(Exception, match="Decimal"):
        async with user_transaction(sessions, "dave") as s:
            p = _position("dave", 3001)
            p.quantity = 1.5  # type: ignore[assignment]
            s.add(p)
    await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_activity_log_is_append_only(backend, sqlite_url, database_url):
    url = sqlite_url if backend == "sqlite" else database_url
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as s, s.begin():
        s.add(ActivityLog(seq=1 if backend == "sqlite" else 10_001, event_id=f"e-{backend}", conn="paper",
                          type="session.tickled", source="t", occurred_at=NOW, stored_at=NOW, envelope="{}",
                          prev_hash="0" * 64, hash="1" * 64))
    with pytest.raises((DBAPIError, IntegrityError)):
        async with sessions() as s, s.begin():
            await s.execute(text("UPDATE ibkr_trading_activity_log SET type = 'x'"))
    with pytest.raises((DBAPIError, IntegrityError)):
        async with sessions() as s, s.begin():
            await s.execute(text("DELETE FROM ibkr_trading_activity_log"))
    await engine.dispose()


def test_migrating_twice_is_a_no_op(tmp_path):
    url = f"sqlite:///{tmp_path}/twice.db"
    upgrade(url)
    first = current_revision(url)
    upgrade(url)
    assert current_revision(url) == first is not None


async def test_every_user_owned_table_has_rls_forced_on_postgres(postgres_admin_url, make_database, run_names):
    from sqlalchemy import create_engine

    from ibkr_common.db.models import USER_OWNED_TABLES

    make_database("rlscheck")
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{run_names.database}_rlscheck"
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(:t)"),
            {"t": list(USER_OWNED_TABLES)}).all()
    engine.dispose()
    assert sorted(r[0] for r in rows) == sorted(USER_OWNED_TABLES)
    assert all(r[1] and r[2] for r in rows)
