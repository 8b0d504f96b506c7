"""The authz application: the auth callout responder plus the connection directory it reads owners from."""

from __future__ import annotations

import logging

from faststream import FastStream

from ibkr_authz.callout import CalloutService
from ibkr_authz.kick import Kicker, OpenClients
from ibkr_authz.settings import AuthzSettings
from ibkr_authz.users import UserFile
from ibkr_common.connections import ConnectionDirectory
from ibkr_common.ops import observe
from ibkr_common.service import make_broker
from ibkr_common.subjects import AUTH_CALLOUT

log = logging.getLogger("ibkr_authz.app")
QUEUE_GROUP = "authz"


def build_app(settings: AuthzSettings) -> FastStream:
    """Build authz; nothing connects until the app starts. `app.callout` is the responder, `app.kicker` what
    drops a person's clients when their grant changes (None without `IBKR_AUTHZ_KICK_NATS_URL`)."""
    broker = make_broker(settings, "authz")
    directory = ConnectionDirectory(broker, settings)
    directory.subscribe()
    kick_url = settings.authz_kick_nats_url.get_secret_value()
    kicker = Kicker(kick_url, OpenClients()) if kick_url else None
    if kicker is not None:
        directory.on_change(kicker.on_change)
    callout = CalloutService(settings.authz_issuer_seed.get_secret_value(), settings.authz_account,
                             UserFile(settings.authz_users_file), lambda: directory,
                             kicker.clients if kicker is not None else None)

    @broker.subscriber(AUTH_CALLOUT, queue=QUEUE_GROUP,
                       description="NATS's auth callout: a signed authorization request in, a signed "
                                   "authorization response (a user JWT, or a refusal) out.")
    async def authorize(body: str) -> str:
        return await callout.answer(body)

    app = FastStream(broker, logger=logging.getLogger("ibkr_authz.faststream"))

    @app.after_startup
    async def _directory() -> None:
        if kicker is not None:
            await kicker.start()
        else:
            log.warning("IBKR_AUTHZ_KICK_NATS_URL is not set: a person's grant changes only when their client "
                        "reconnects or its user JWT expires")
        await directory.start()

    @app.on_shutdown
    async def _stop() -> None:
        await directory.stop()
        if kicker is not None:
            await kicker.stop()

    ops = observe(app, broker, settings, "authz")  # /healthz, /readyz (NATS connected, answering), /metrics
    ops.detail("registry_seen", lambda: directory.registry_seen)
    ops.detail("connections", lambda: len(directory))
    if kicker is not None:
        async def kick_connected() -> bool:
            return kicker.connected

        ops.check("kick", kick_connected)  # the system account connection that drops clients on a grant change
        ops.counter("ibkr_authz_kicks", "Kicks of people's NATS clients on a grant change, by outcome: closed, "
                    "gone (the client had left), unanswered (kept for the next change).",
                    lambda: {(outcome,): n for outcome, n in kicker.totals.items()}, labels=("outcome",))
    app.kicker = kicker  # type: ignore[attr-defined]
    app.callout = callout  # type: ignore[attr-defined]
    app.directory = directory  # type: ignore[attr-defined]
    return app
