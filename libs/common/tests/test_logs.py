"""Log lines: JSON with service, connection, correlation and trace ids; every secret masked."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from ibkr_common.logs import JsonFormatter, SecretMask, correlation_id, mask_urls, redact, setup_logging
from ibkr_common.settings import CommonSettings, SettingsError, load_settings

KEY = "k" * 20 + "-the-encryption-passphrase"
OLD = "o" * 20 + "-an-older-passphrase-here"


@pytest.mark.parametrize(("text", "masked"), [
    ("nats %s nats://bridge:s3cret@nats:4222", "nats %s nats://bridge:***@nats:4222"),
    ("postgresql+psycopg://ibkr_app:p%40ss@db:5432/ibkr", "postgresql+psycopg://ibkr_app:***@db:5432/ibkr"),
    ("servers nats://a:x@h1:4222,nats://b:y@h2:4222", "servers nats://a:***@h1:4222,nats://b:***@h2:4222"),
    ("token auth nats://sometoken@nats:4222", "token auth nats://***@nats:4222"),
    ("no password https://user@host/x, mail bob@example.com", "no password https://user@host/x, mail bob@example.com"),
    ("'redis://:only-password@cache:6379/0'", "'redis://:***@cache:6379/0'"),
])
def test_urls_lose_their_passwords_and_tokens(text, masked):
    assert mask_urls(text) == masked
    assert redact(text) == masked


def test_secret_values_are_masked_anywhere_even_percent_encoded():
    mask = SecretMask(["pa ss/word", "x"])  # too short a value is not a secret worth masking everywhere
    assert mask("failed: pa ss/word and pa%20ss%2Fword") == "failed: *** and ***"
    assert mask("x marks the spot") == "x marks the spot"


def _formatted(formatter: logging.Formatter, message: str, *args: object, exc: bool = False) -> dict:
    record = logging.LogRecord("ibkr_test", logging.WARNING, __file__, 1, message, args, None)
    if exc:
        try:
            raise RuntimeError(f"boom with {KEY}")
        except RuntimeError:
            import sys

            record.exc_info = sys.exc_info()
    return json.loads(formatter.format(record))


def test_a_json_line_has_service_connection_correlation_and_trace_ids():
    formatter = JsonFormatter("compliance", "paper", secrets=SecretMask([KEY]))
    token = correlation_id.set("corr-123")
    try:
        with TracerProvider().get_tracer("t").start_as_current_span("orders.submit") as span:
            line = _formatted(formatter, "order %s from %s", "c-1", "nats://u:pw@h:4222", exc=True)
            expected_trace = format(span.get_span_context().trace_id, "032x")
    finally:
        correlation_id.reset(token)
    assert line["service"] == "compliance" and line["connection"] == "paper"
    assert line["level"] == "WARNING" and line["logger"] == "ibkr_test"
    assert line["msg"] == "order c-1 from nats://u:***@h:4222"
    assert line["correlation_id"] == "corr-123"
    assert line["trace_id"] == expected_trace and len(line["span_id"]) == 16
    assert "RuntimeError: boom with ***" in line["exc"] and KEY not in line["exc"]
    assert line["ts"].endswith("+00:00")


def test_outside_a_message_and_a_span_no_ids_are_written():
    line = _formatted(JsonFormatter("audit", "paper"), "plain")
    assert "correlation_id" not in line and "trace_id" not in line


def test_setup_logging_masks_the_settings_secrets_in_every_line(monkeypatch):
    monkeypatch.setenv("IBKR_ENCRYPTION_KEY", KEY)
    monkeypatch.setenv("IBKR_OLD_ENCRYPTION_KEYS", f"{OLD},{OLD[::-1]}")
    monkeypatch.setenv("NATS_URL", "nats://svc:natspw@localhost:4222")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://app:dbpw%2Fx@localhost/ibkr")
    settings = CommonSettings(_env_file=None)
    assert set(settings.secret_values()) == {KEY, OLD, OLD[::-1], "natspw", "dbpw/x"}
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_logging("sync-worker", "INFO", connection="paper", secrets=settings.secret_values())
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        logging.getLogger("ibkr_test").warning("settings %r", settings.model_dump())
        logging.getLogger("ibkr_test").warning("key %s old %s db %s", KEY, OLD[::-1], "dbpw/x")
    finally:
        logging.captureWarnings(False)
        root.handlers[:], level = saved
        root.setLevel(level)
    out = stream.getvalue()
    for secret in (KEY, OLD, OLD[::-1], "natspw", "dbpw"):
        assert secret not in out
    assert all(json.loads(line)["service"] == "sync-worker" for line in out.splitlines())


def test_a_bad_url_setting_is_reported_without_its_password(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://app:hunter2-secret@db/ibkr")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "DATABASE_URL" in info.value.message
    assert "mysql://app:***@db/ibkr" in info.value.message and "hunter2" not in info.value.message
