"""The hash chain and the secret masking, as pure functions."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ibkr_audit.chain import GENESIS_HASH, ChainRow, ChainWalker, link, row_hash
from ibkr_audit.consumer import masked_raw, parse_message
from ibkr_audit.redact import REDACTED, redact_value
from ibkr_audit.store import DeadLetterItem
from ibkr_common.envelope import new_event

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def rows(n: int) -> list[ChainRow]:
    return link(0, GENESIS_HASH, [
        ChainRow(seq=0, event_id=f"id-{i}", conn="paper", type="gateway.call", account_id=None, user_id=None,
                 source="t", occurred_at=T0 + timedelta(seconds=i), stored_at=T0, stream_seq=i,
                 envelope=f'{{"n":{i}}}')
        for i in range(n)
    ], T0)


def test_link_numbers_and_chains_from_genesis() -> None:
    chain = rows(5)
    assert [r.seq for r in chain] == [1, 2, 3, 4, 5]
    assert chain[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert row_hash(chain[2].prev_hash, chain[2]) == chain[2].hash
    walker = ChainWalker()
    assert walker.feed(chain[:2]) and walker.feed(chain[2:])
    assert walker.ok and walker.checked == 5


def test_any_change_is_found_at_its_row() -> None:
    chain = rows(6)
    for field, value in [("envelope", '{"n":99}'), ("type", "orders.filled"), ("occurred_at", T0),
                         ("account_id", "DU1"), ("stream_seq", 77)]:
        tampered = [*chain[:3], replace(chain[3], **{field: value}), *chain[4:]]
        walker = ChainWalker()
        walker.feed(tampered)
        assert walker.first_bad_seq == 4, field


def test_a_rehashed_row_breaks_the_next_link() -> None:
    chain = rows(6)
    forged = replace(chain[3], envelope='{"n":"forged"}')
    forged = replace(forged, hash=row_hash(forged.prev_hash, forged))
    walker = ChainWalker()
    walker.feed([*chain[:3], forged, *chain[4:]])
    assert walker.first_bad_seq == 5 and "prev_hash" in (walker.problem or "")


def test_missing_rows_are_found() -> None:
    chain = rows(6)
    walker = ChainWalker()
    walker.feed([*chain[:2], *chain[3:]])
    assert walker.first_bad_seq == 3 and "missing" in (walker.problem or "")
    tail = ChainWalker()
    tail.feed(chain[:4])
    tail.finish(known_last_seq=6)
    assert tail.first_bad_seq == 5


def test_redaction_masks_secret_keys_and_text() -> None:
    value = {"password": "pw-123456", "nested": {"X-Api-Key": 12345, "cookie": ["a", "b"]}, "ok": "fine",
             "password_set": True, "token": None, "msg": "login token=abcdef123456", "list": [{"secret": "s"}]}
    masked, count = redact_value(value)
    assert masked["password"] == REDACTED and masked["nested"]["X-Api-Key"] == REDACTED
    assert masked["nested"]["cookie"] == REDACTED and masked["list"][0]["secret"] == REDACTED
    assert masked["password_set"] is True and masked["token"] is None and masked["ok"] == "fine"
    assert "abcdef123456" not in masked["msg"]
    assert count == 5


def test_parse_message_masks_payload_and_rejects_bad_envelopes() -> None:
    env = new_event("gateway.call", conn="paper", environment="paper", source="t", occurred_at=T0,
                    payload={"cookie": "c=1"})
    row, masked = parse_message("ibkr.paper.events.gateway.call", env.to_bytes(), 7)
    assert isinstance(row, ChainRow) and masked == 1 and "c=1" not in row.envelope and row.stream_seq == 7
    dead, _ = parse_message("ibkr.paper.events.gateway.call", b'{"password":"hunter22"}', 8)
    assert isinstance(dead, DeadLetterItem) and b"hunter22" not in dead.raw
    assert masked_raw(b"\x00\x01binary") == b"\x00\x01binary"


def test_link_hashes_as_row_hash_does() -> None:
    linked = link(41, "ab" * 32, rows(5), T0)
    prev = "ab" * 32
    for row in linked:
        assert row.prev_hash == prev and row.hash == row_hash(prev, row)
        prev = row.hash


def test_may_hold_secrets_is_true_whenever_redaction_masks_something() -> None:
    from ibkr_audit.redact import may_hold_secrets

    samples: list[dict[str, object]] = [
        {"method": "GET", "path": "/iserver/account/{accountId}/orders", "status": 200, "n": 1},
        {"password": "pw-123456"}, {"nested": {"X-Api-Key": 12345}}, {"list": [{"secret": "s"}]},
        {"cookie": ["a", "b"]}, {"password_set": True, "token": None}, json.loads('{"p\\u0061ssword": "hunter22"}'),
        {"msg": "login token=abcdef123456"}, {"msg": "Authorization: Bearer abc.def"},
        {"deep": [[{"note": "api_key=0123456789"}]]}, {"note": "session=0123456789abcdef0123"},
        {"note": "PASSWD: topsecret1"}, {"note": "encryption_key=k"}, {"note": "client secret: s3cr3t-value"},
        {"note": "Cookie=abc123; path=/"}, {"short": "token"}, {"ok": [1, 2.5, None, "fine"]},
    ]
    for value in samples:
        masked = redact_value(value)[1]
        assert may_hold_secrets(value) or masked == 0, value
    assert not may_hold_secrets(samples[0]) and not may_hold_secrets(samples[5]) and not may_hold_secrets(samples[-1])
    assert all(may_hold_secrets(v) for v in samples[1:5] + samples[6:14])
