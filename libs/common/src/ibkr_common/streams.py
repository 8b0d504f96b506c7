"""The JetStream stream of events, and a helper that makes sure it exists with that config."""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import NotFoundError

from ibkr_common.subjects import all_connections_events

log = logging.getLogger("ibkr_common.streams")

EVENTS_STREAM = "IBKR_EVENTS"
DUPLICATE_WINDOW_S = 300.0  # at least 2 minutes (CONTRACT.md); 5 covers slow retries


def events_stream_config(name: str = EVENTS_STREAM, subjects: list[str] | None = None) -> StreamConfig:
    """The `IBKR_EVENTS` stream: file storage, deduplicated by `Nats-Msg-Id`, kept until limits."""
    return StreamConfig(
        name=name,
        subjects=subjects or [all_connections_events()],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=30 * 24 * 3600.0,
        num_replicas=1,
        description="Every event of ibkr-stack; audit stores each once in ibkr_trading_activity_log.",
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> StreamInfo:
    """Create the stream, or bring an existing one's subjects and windows to `config`."""
    try:
        info = await js.stream_info(config.name or "")
    except NotFoundError:
        log.info("creating stream %s over %s", config.name, config.subjects)
        return await js.add_stream(config)
    current = info.config
    for setting in ("storage", "retention"):  # JetStream cannot change these in place: say so, loudly
        have, want = getattr(current, setting), getattr(config, setting)
        if have != want:
            log.error("stream %s has %s %s, not %s: it cannot be changed in place; recreate the stream "
                      "(after audit has stored everything) to get it", config.name, setting,
                      getattr(have, "value", have), getattr(want, "value", want))
    if (
        sorted(current.subjects or []) != sorted(config.subjects or [])
        or current.duplicate_window != config.duplicate_window
        or current.max_age != config.max_age
    ):
        log.info("updating stream %s to %s", config.name, config.subjects)
        return await js.update_stream(config)
    return info


class StreamMissing(RuntimeError):
    """The events stream does not exist and this service may not create it."""


async def check_stream(js: JetStreamContext, config: StreamConfig) -> StreamInfo:
    """The stream's info, without creating or changing it (for users without the right to).

    Raises StreamMissing, naming the provisioning step, when the stream does not exist; warns when its
    subjects or windows differ from `config` (the provisioning step brings them in line).
    """
    try:
        info = await js.stream_info(config.name or "")
    except NotFoundError:
        raise StreamMissing(
            f"stream {config.name} does not exist and IBKR_PROVISION_STREAMS=false: run the provisioning step "
            "first (python -m ibkr_audit.provision: docker compose's `provision` service)"
        ) from None
    current = info.config
    if (
        sorted(current.subjects or []) != sorted(config.subjects or [])
        or current.duplicate_window != config.duplicate_window
        or current.max_age != config.max_age
    ):
        log.warning("stream %s covers %s (duplicate window %s s, max age %s s), not %s (%s s, %s s): run the "
                    "provisioning step to update it", config.name, current.subjects, current.duplicate_window,
                    current.max_age, config.subjects, config.duplicate_window, config.max_age)
    return info
