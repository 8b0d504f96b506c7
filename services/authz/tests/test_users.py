"""The users file: scrypt hashes, checked in constant time, re-read when it changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ibkr_authz.__main__ import new_issuer
from ibkr_authz.permissions import grant_for, inbox_prefix
from ibkr_authz.settings import AuthzSettings
from ibkr_authz.users import UserFile, hash_password, password_matches
from pydantic import ValidationError

from ibkr_common.connections import Connection
from ibkr_contract.connections import GatewaySettings


def test_a_hash_accepts_its_password_only() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert password_matches("correct horse", stored)
    assert not password_matches("correct hors", stored)
    assert not password_matches("correct horse", "plain-text")
    assert hash_password("same") != hash_password("same")  # salted


def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"users": {"alice": hash_password("a-pw")}}))
    users = UserFile(path)
    assert users.authenticate("alice", "a-pw") and not users.authenticate("bob", "b-pw")
    path.write_text(json.dumps({"users": {"bob": hash_password("b-pw")}}))
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert users.authenticate("bob", "b-pw") and not users.authenticate("alice", "a-pw")
    assert not users.authenticate(None, "b-pw") and not users.authenticate("bob", None)


def test_a_grant_names_only_the_users_connections() -> None:
    gateway = GatewaySettings(host="127.0.0.1", port=5000)
    conns = [Connection(id=c, user_id=u, environment="paper", gateway=gateway, enabled=True)
             for c, u in (("a1", "alice"), ("a2", "alice"), ("b1", "bob"))]
    grant = grant_for("alice", conns)
    assert grant.connections == ("a1", "a2")
    assert "ibkr.a1.orders.submit" in grant.publish and "ibkr.a2.audit.query" in grant.publish
    assert not [s for s in grant.publish if ".b1." in s or ".bridge." in s or ".events." in s or "*" in s]
    assert "ibkr.a1.audit.verify" not in grant.publish
    assert grant.subscribe == ("ibkr.a1.events.>", "ibkr.a2.events.>", f"{inbox_prefix('alice')}.>")
    assert inbox_prefix("alice") != inbox_prefix("bob") and "." not in inbox_prefix("a.b")
    assert grant_for("mallory", conns).publish == ()


def test_authz_refuses_an_issuer_public_key_that_is_not_its_seeds(tmp_path: Path) -> None:
    seed, public = new_issuer()
    _other_seed, other_public = new_issuer()
    common = {"nats_url": "nats://127.0.0.1:4222", "authz_users_file": tmp_path / "users.json",
              "authz_issuer_seed": seed}
    assert AuthzSettings(**common, authz_issuer=public).authz_issuer == public
    assert AuthzSettings(**common).authz_issuer == ""  # not given: not checked
    with pytest.raises(ValidationError, match="not the public key of IBKR_AUTHZ_ISSUER_SEED") as info:
        AuthzSettings(**common, authz_issuer=other_public)
    assert seed not in str(info.value)
