"""The authz application: the auth callout responder plus the connection directory it reads owners from."""

from __future__ import annotations

import logging

from faststream import FastStream

from ibkr_authz.callout import CalloutService
from ibkr_authz.settings import AuthzSettings
from ibkr_authz.users import UserFile
from ibkr_common.connections import ConnectionDirectory
from ibkr_common.ops import observe
from ibkr_common.service import make_broker
from ibkr_common.subjects import AUTH_CALLOUT

log = logging.getLogger("ibkr_authz.app")
QUEUE_GROUP = "authz"


def build_app(settings: AuthzSettings) -> FastStream:
    """Build authz; nothing connects until the app starts. `app.callout` is the responder."""
    broker = make_broker(settings, "authz")
    directory = ConnectionDirectory(broker, settings)
    directory.subscribe()
    callout = CalloutService(settings.authz_issuer_seed.get_secret_value(), settings.authz_account,
                             UserFile(settings.authz_users_file), lambda: directory)

    @broker.subscriber(AUTH_CALLOUT, queue=QUEUE_GROUP,
                       description="NATS's auth callout: a signed authorization request in, a signed "
                                   "authorization response (a user JWT, or a refusal) out.")
    async def authorize(body: str) -> str:
        return await callout.answer(body)

    app = FastStream(broker, logger=logging.getLogger("ibkr_authz.faststream"))

    @app.after_startup
    async def _directory() -> None:
        await directory.start()

    @app.on_shutdown
    async def _stop() -> None:
        await directory.stop()

    ops = observe(app, broker, settings, "authz")  # /healthz, /readyz (NATS connected, answering), /metrics
    ops.detail("registry_seen", lambda: directory.registry_seen)
    ops.detail("connections", lambda: len(directory))
    app.callout = callout  # type: ignore[attr-defined]
    app.directory = directory  # type: ignore[attr-defined]
    return app
