"""Logging setup: one line per record with the service's name, and secrets redacted."""

from __future__ import annotations

import logging
import re
import sys

_SECRET_PATTERNS = [
    re.compile(r"(?i)(password|passwd|secret|token|cookie|authorization|api_key|encryption_key)(\"?\s*[:=]\s*\"?)([^\s\",;]+)"),
    re.compile(r"(?i)(session\"?\s*[:=]\s*\"?)([0-9a-f]{16,})"),
]


def redact(text: str) -> str:
    """Mask values that look like credentials, cookies or tokens."""
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    return _SECRET_PATTERNS[1].sub(lambda m: f"{m.group(1)}***", text)


class RedactingFormatter(logging.Formatter):
    """A formatter that masks secrets in the final line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(service: str, level: str = "INFO") -> None:
    """Log to stderr as `time level service logger: message`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingFormatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "nats", "faststream", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
