"""`connections.rotate_key`: rows under an earlier key move to the current one while the earlier key still
decrypts them; before the rotation the earlier key is needed, after it not."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ibkr_common.crypto import CredentialCipher, DecryptionError
from ibkr_common.db.engine import all_users_read_transaction, make_engine, make_sessionmaker
from ibkr_registry.store import associated_data

from .conftest import KEY_NEW, KEY_OLD, OTHER, OWNER, USERNAME, admin, create_body

pytestmark = pytest.mark.connected


async def _rows(url: str) -> dict[str, tuple[str, str, str]]:
    engine = make_engine(url)
    async with all_users_read_transaction(make_sessionmaker(engine)) as session:
        rows = (await session.execute(text(
            "SELECT connection, user_id, username_encrypted, key_id FROM ibkr_credentials "
            "WHERE username_encrypted IS NOT NULL"))).all()
    await engine.dispose()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


async def test_rotation_moves_every_row_to_the_current_key(any_database, names, nats_client, start_registry):
    old, new = CredentialCipher(KEY_OLD), CredentialCipher(KEY_NEW)
    async with start_registry(any_database, encryption_key=KEY_OLD):
        assert (await admin(nats_client, "connections.create", create_body(names)))["ok"]
        assert (await admin(nats_client, "connections.create",
                            create_body(names, conn=names.conn2, user_id=OTHER, username="bobsname")))["ok"]
    before = await _rows(any_database)
    assert {kid for _, _, kid in before.values()} == {old.current_key_id}
    user, value, _ = before[names.conn]
    with pytest.raises(DecryptionError):  # the new key alone cannot read them yet
        new.decrypt(value, associated_data(user, names.conn))

    async with start_registry(any_database, encryption_key=KEY_NEW):  # the old key is not configured
        stuck = await admin(nats_client, "connections.rotate_key", {})
    assert stuck["ok"], stuck
    assert stuck["result"]["rotated"] == 0 and {f["connection"] for f in stuck["result"]["failed"]} == {
        names.conn, names.conn2}
    assert await _rows(any_database) == before  # nothing was changed

    async with start_registry(any_database, encryption_key=KEY_NEW, old_encryption_keys=KEY_OLD):
        rotated = await admin(nats_client, "connections.rotate_key", {})
        assert rotated["ok"], rotated
        assert rotated["result"] == {"key_id": new.current_key_id, "rows": 2, "rotated": 2, "already_current": 0,
                                     "failed": []}
        got = await admin(nats_client, "connections.get", {"user_id": OWNER, "connection": names.conn})
        assert got["result"]["key_id"] == new.current_key_id
        twice = await admin(nats_client, "connections.rotate_key", {})
        assert (twice["result"]["rotated"], twice["result"]["already_current"]) == (0, 2)
        bad = await admin(nats_client, "connections.rotate_key", {"all": True})
        assert bad["error"]["code"] == "VALIDATION_ERROR" and bad["error"]["details"][0]["field"] == "all"

    after = await _rows(any_database)
    assert {kid for _, _, kid in after.values()} == {new.current_key_id}
    for conn, username in ((names.conn, USERNAME), (names.conn2, "bobsname")):
        user, value, _ = after[conn]
        assert value != before[conn][1] and username not in value
        assert new.decrypt(value, associated_data(user, conn)) == username  # the new key alone suffices
        with pytest.raises(DecryptionError):
            old.decrypt(value, associated_data(user, conn))
