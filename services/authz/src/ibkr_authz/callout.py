"""The auth callout responder: NATS asks who a connecting client is; the answer is a signed user JWT.

The protocol (the server's signed `authorization_request`, our `authorization_response` carrying a user
JWT signed by the issuer account's NKey) is done by the `nats-callout` library, whose documented use is
to subclass `BaseAuthCalloutService` and implement `_handle_auth_request_data`. Two of its attributes are
set here because its 0.1.1 release leaves them unset on its own `AdaptixEncoder` (its README's example
fails without them): `kp`, the key that signs, and `json_loads`, which it applies to PyJWT's payload, a
dict already.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import nkeys
from nats_callout import AdaptixEncoder, AuthError, BaseAuthCalloutService
from nats_callout.claims import AuthRequestData, UserData
from nats_callout.claims.user import PubSubPermissions

from ibkr_authz.kick import ClientRef, OpenClients
from ibkr_authz.permissions import Grant, grant_for
from ibkr_authz.users import UserFile
from ibkr_common.connections import Connection

log = logging.getLogger("ibkr_authz.callout")


def _only(subjects: tuple[str, ...]) -> PubSubPermissions:
    """Permissions allowing `subjects` and nothing else. NATS reads an empty allow list as no limit at all, so
    nothing to allow (a person who owns no connection may publish nothing) is said as a denial of every subject."""
    return PubSubPermissions(allow=list(subjects), deny=[] if subjects else [">"])


class CalloutService(BaseAuthCalloutService):
    """Authenticates a person by user id and password, and allows only their own connections' subjects."""

    def __init__(self, seed: str, account: str, users: UserFile,
                 connections: Callable[[], Iterable[Connection]], clients: OpenClients | None = None) -> None:
        self.nkey_seed = seed
        self.account = account
        self.encoder = AdaptixEncoder()
        self.encoder.kp = nkeys.from_seed(seed.encode())
        self.encoder.json_loads = dict
        self.users = users
        self.connections = connections
        self.clients = clients  # who holds which client connection, for the kick when their grant changes
        self.granted: list[Grant] = []  # the last 100 grants, newest last (for tests and diagnosis)

    async def _handle_auth_request_data(self, auth_request_data: AuthRequestData) -> UserData:
        opts = auth_request_data.connect_opts
        user_id = opts.user
        if not self.users.authenticate(user_id, opts.pass_):
            log.warning("refused a NATS login as %r from %s", user_id, auth_request_data.client_info.host)
            raise AuthError("unknown user or wrong password")
        assert user_id is not None  # authenticate() refuses None
        client_id = auth_request_data.client_info.id
        if self.clients is not None and client_id is not None:  # noted first: a change applied after the grant
            # below was read (while this answer is on its way, say) kicks this client too
            self.clients.add(user_id, ClientRef(auth_request_data.server_id.id, client_id))
        grant = grant_for(user_id, self.connections())
        self.granted = [*self.granted[-99:], grant]
        log.info("NATS login of %s: connections %s", user_id, ", ".join(grant.connections) or "(none)")
        return UserData(pub=_only(grant.publish), sub=_only(grant.subscribe),
                        version=auth_request_data.version, tags=auth_request_data.tags)

    async def answer(self, request_jwt: str) -> str:
        """The signed response to one `authorization_request` JWT (a refusal is a response too)."""
        return await self(request_jwt)
