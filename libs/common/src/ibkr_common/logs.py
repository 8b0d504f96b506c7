"""Logging: one JSON object a line (service, connection, logger, correlation and trace ids), secrets masked.

Three layers of masking apply to every line, whatever its format: the password (or NATS token) of any
URL (`nats://user:***@host`, `postgresql://user:***@host`), values written as `password=...`,
`token: ...` and the like, and each secret value this process was configured with (its SecretStr
settings, passphrases and URL passwords: `CommonSettings.secret_values()`), wherever it appears.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

_SECRET_PATTERNS = [
    re.compile(r"(?i)(password|passwd|secret|token|cookie|authorization|api_key|encryption_key)(\"?\s*[:=]\s*\"?)([^\s\",;]+)"),
    re.compile(r"(?i)(session\"?\s*[:=]\s*\"?)([0-9a-f]{16,})"),
]
#: `scheme://user:password@` (password group optional: `nats://token@`).
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/@:,'\"]*)(?::(?P<pw>[^\s/@,'\"]*))?@")
_TOKEN_SCHEMES = ("nats://", "tls://", "ws://", "wss://")
MASK = "***"
#: What FastStream's broker logger adds to its records (the subject and the start of the message id).
FASTSTREAM_EXTRAS = ("subject", "message_id")

#: The correlation id of the message being handled (set by the broker's correlation middleware).
correlation_id: ContextVar[str | None] = ContextVar("ibkr_correlation_id", default=None)


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, user = match.group("scheme"), match.group("user")
    if match.group("pw") is not None:
        return f"{scheme}{user}:{MASK}@"
    if user and scheme.lower() in _TOKEN_SCHEMES:
        return f"{scheme}{MASK}@"
    return match.group(0)


def mask_urls(text: str) -> str:
    """Replace the password (or NATS token) of every URL in `text` by `***`; the user and host stay."""
    return _URL_USERINFO.sub(_mask_userinfo, text) if "://" in text else text


def redact(text: str) -> str:
    """Mask values that look like credentials, cookies or tokens, and the passwords of URLs."""
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _SECRET_PATTERNS[1].sub(lambda m: f"{m.group(1)}{MASK}", text)
    return mask_urls(text)


class SecretMask:
    """Replaces each known secret value (and its percent-encoded form) by `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s and len(s) >= 3}
        values |= {quote(s, safe="") for s in values}
        self.values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text


class RedactingFormatter(logging.Formatter):
    """A text formatter that masks secrets in the final line."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, *, secrets: SecretMask | None = None
                 ) -> None:
        super().__init__(fmt, datefmt)
        self.mask = secrets or SecretMask()

    def format(self, record: logging.LogRecord) -> str:
        return self.mask(redact(super().format(record)))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: `ts`, `level`, `service`, `connection`, `logger`, `msg`, and when known
    `correlation_id`, `trace_id` / `span_id` (the current OpenTelemetry span), FastStream's `subject` and
    `message_id`, and `exc` (the traceback).
    Every text is masked before it is encoded."""

    def __init__(self, service: str, connection: str, *, secrets: SecretMask | None = None) -> None:
        super().__init__()
        from opentelemetry import trace

        self.service = service
        self.connection = connection
        self.mask = secrets or SecretMask()
        self._current_span = trace.get_current_span

    def clean(self, text: str) -> str:
        """The text with every secret masked."""
        return self.mask(redact(text))

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "connection": self.connection,
            "logger": record.name,
            "msg": self.clean(record.getMessage()),
        }
        cid = correlation_id.get()
        if cid:
            entry["correlation_id"] = self.clean(cid)
        for extra in FASTSTREAM_EXTRAS:  # FastStream's own message lines (Received, Processed) name the message
            value = getattr(record, extra, None)
            if value:
                entry[extra] = self.clean(str(value))
        span = self._current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exc"] = self.clean(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.clean(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(service: str, level: str = "INFO", *, connection: str = "", log_format: str = "json",
                  secrets: Iterable[str] = ()) -> None:
    """Log to stderr, JSON lines (or `time level service logger: message` for `text`), with `secrets` masked."""
    mask = SecretMask(secrets)
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "text":
        handler.setFormatter(RedactingFormatter(
            f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S%z", secrets=mask))
    else:
        handler.setFormatter(JsonFormatter(service, connection, secrets=mask))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    for noisy in ("httpx", "httpcore", "nats", "faststream", "aiosqlite", "alembic", "uvicorn"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
