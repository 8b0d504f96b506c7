"""Session endpoints: auth status, tickle, sso/validate, ssodh/init, reauthenticate, logout."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cpsim.clock import ms
from cpsim.payloads import recorded
from cpsim.state import SimState
from cpsim.web import ApiError, as_dict, json_body, need_sso, ok

USER_ID = 12345678


def auth_status(state: SimState) -> dict[str, Any]:
    """The auth-status object (also embedded in tickle and returned by ssodh/init)."""
    s = state.session
    body: dict[str, Any] = recorded("Session/GET-auth-status.json")
    body.update(
        {
            "authenticated": s.authenticated,
            "established": s.authenticated,
            "competing": s.competing,
            "connected": s.connected,
            "message": "",
            "fail": "",
        }
    )
    if not s.connected:
        body["serverInfo"] = {"serverName": None, "serverVersion": None}
    return body


def routes(state: SimState) -> list[Route]:
    """The session routes, bound to `state`."""

    async def status(request: Request) -> Response:
        return ok(auth_status(state))

    async def tickle(request: Request) -> Response:
        need_sso(state)
        s = state.session
        now = state.clock.now()
        s.refresh_sso(now)  # a tickle extends the SSO token
        return ok(
            {
                "session": s.session_id,
                "ssoExpires": s.sso_expires_ms(now),
                "collission": False,
                "userId": USER_ID,
                "hmds": {"error": "no bridge"},
                "iserver": {"authStatus": auth_status(state)},
            }
        )

    async def validate(request: Request) -> Response:
        need_sso(state)
        s = state.session
        now = state.clock.now()
        s.refresh_sso(now)  # so does validate (IBEAM calls it after tickle for that)
        login = s.login_at or now
        return ok(
            {
                "USER_ID": USER_ID,
                "USER_NAME": state.config.username,
                "RESULT": True,
                "AUTH_TIME": ms(login),
                "SF_ENABLED": False,
                "IS_FREE_TRIAL": False,
                "CREDENTIAL": state.config.username,
                "IP": "127.0.0.1",
                "EXPIRES": s.sso_expires_ms(now),
                "QUALIFIED_FOR_MOBILE_AUTH": False,
                "LANDING_APP": "UNIVERSAL",
                "IS_MASTER": False,
                "lastAccessed": ms(now),
                "LOGIN_TYPE": 2 if state.config.paper else 1,
                "PAPER_USER_NAME": state.config.username,
                "features": {
                    "env": "PROD",
                    "wlms": True,
                    "realtime": True,
                    "bond": True,
                    "optionChains": True,
                    "calendar": True,
                    "newMf": True,
                },
                "region": "NJ",
            }
        )

    async def ssodh_init(request: Request) -> Response:
        need_sso(state)
        body = as_dict(await json_body(request))
        if body.get("publish") is not True:
            raise ApiError(500, {"error": "publish must be true"})
        s = state.session
        if (not s.competing or body.get("compete") is True) and not s.authenticated:
            s.start_brokerage(state.clock.now())
        return ok(auth_status(state))

    async def reauthenticate(request: Request) -> Response:
        need_sso(state)
        s = state.session
        force = request.query_params.get("force", "").lower() == "true"
        if (not s.competing or force) and not s.authenticated:
            s.start_brokerage(state.clock.now())
        return ok({"message": "triggered"})

    async def logout(request: Request) -> Response:
        need_sso(state)
        state.session.logout("logout")
        return ok({"status": True})

    async def hmds_init(request: Request) -> Response:
        need_sso(state)
        return ok({"authenticated": True})

    return [
        Route("/v1/api/iserver/auth/status", status, methods=["GET", "POST"]),
        Route("/v1/api/tickle", tickle, methods=["GET", "POST"]),
        Route("/v1/api/sso/validate", validate, methods=["GET"]),
        Route("/v1/api/iserver/auth/ssodh/init", ssodh_init, methods=["POST"]),
        Route("/v1/api/iserver/reauthenticate", reauthenticate, methods=["POST"]),
        Route("/v1/api/logout", logout, methods=["POST"]),
        Route("/v1/api/hmds/auth/init", hmds_init, methods=["POST"]),
    ]
