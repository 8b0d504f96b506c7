"""Verifying a connection through its own gateway-bridge (`ibkr.<conn>.bridge.*`), and reading from compliance
(`ibkr.<conn>.compliance.*`) what its owner still has to acknowledge.

The registry never talks to a gateway itself: the bridge serving the connection does, so what is verified is
exactly the path the connection's orders will take.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from ibkr_common.bridge_client import BridgeClient, BridgeError
from ibkr_common.messages.bridge import AccountsList, Empty
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_common.rpc import Rpc, RpcError, RpcUnavailable
from ibkr_common.subjects import Subjects
from ibkr_contract.connections import CheckResult
from ibkr_registry.store import ReadAccount

log = logging.getLogger("ibkr_registry.verify")

#: Why the username is not compared: said in the `username` check rather than pretending.
USERNAME_NOT_EXPOSED = (
    "not compared: the gateway-bridge does not pass on the logged-in username (its session.validate answers "
    "without sso/validate's USER_NAME, so that no username travels on NATS); the login itself is the "
    "gateway's: whoever authenticated it owns these accounts"
)


@dataclass
class Verification:
    """What a verification found: its checks, and the accounts read back (empty unless they were)."""

    checks: list[CheckResult] = field(default_factory=list)
    accounts: list[ReadAccount] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every check that counts passed (skipped ones and `disclosures` do not count)."""
        return all(c.ok or c.skipped for c in self.checks if c.check != "disclosures") and bool(self.accounts)

    def add(self, check: str, ok: bool, detail: str = "", *, skipped: bool = False) -> bool:
        self.checks.append(CheckResult(check=check, ok=ok, detail=detail, skipped=skipped))  # type: ignore[arg-type]
        return ok


def _bridge_failure(exc: BridgeError, conn: str) -> str:
    if not exc.sent:
        return f"no gateway-bridge serves connection {conn} (ibkr.{conn}.bridge.*)"
    if not exc.answered:
        return f"the gateway-bridge of {conn} did not answer in time"
    return f"{exc.code}: {exc.message}"


#: How long a verify waits for the bridge to pick a just-created connection up from the registry's event.
PICK_UP_S = 5.0


async def _first_status(bridge: BridgeClient) -> Any:
    """The session status; while the bridge answers NOT_FOUND (it has not yet heard `connection.registered`,
    published a moment ago), asks again for up to PICK_UP_S seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PICK_UP_S
    while True:
        try:
            return await bridge.session_status()
        except BridgeError as exc:
            if exc.code != ErrorCode.NOT_FOUND or loop.time() >= deadline:
                raise
        await asyncio.sleep(0.2)


async def verify_gateway(broker: Any, conn: str, environment: str, timeout_s: float) -> Verification:
    """Reachable, authenticated, the right environment, the username (when it can be), accounts, summaries."""
    bridge = BridgeClient(broker, Subjects(conn), timeout_s=timeout_s, priority="session")
    found = Verification()
    try:
        status = await _first_status(bridge)
    except BridgeError as exc:
        reached = exc.code == ErrorCode.NOT_AUTHENTICATED
        found.add("reachable", reached, "the gateway answered" if reached else _bridge_failure(exc, conn))
        if reached:
            found.add("authenticated", False, "the gateway has no brokerage session: log in at the gateway")
        return found
    found.add("reachable", True, "the gateway answered /iserver/auth/status")
    if not found.add("authenticated", status.authenticated,
                     "brokerage session authenticated" if status.authenticated else
                     f"not authenticated: log in at the gateway{f' ({status.message})' if status.message else ''}"):
        return found
    found.add("username", True, USERNAME_NOT_EXPOSED, skipped=True)
    try:
        listed = await bridge.accounts()
    except BridgeError as exc:
        found.add("accounts", False, _bridge_failure(exc, conn))
        return found
    if await _environment(bridge, found, environment, conn, listed.is_paper):
        await _accounts(bridge, found, conn, listed)
    return found


async def _environment(bridge: BridgeClient, found: Verification, environment: str, conn: str,
                       is_paper: bool | None) -> bool:
    """The login's environment: /iserver/accounts' isPaper, else sso/validate (paced by the gateway)."""
    if is_paper is not None:
        actual, source = ("paper" if is_paper else "live"), "/iserver/accounts"
    else:
        try:
            validated = await bridge.validate()
        except BridgeError as exc:
            found.add("environment", False, f"sso/validate failed: {_bridge_failure(exc, conn)}",
                      skipped=exc.code == ErrorCode.RATE_LIMITED)
            return True
        if validated.environment is None:
            found.add("environment", True, "the gateway did not say paper or live", skipped=True)
            return True
        actual, source = validated.environment, "sso/validate"
    return found.add("environment", actual == environment,
                     f"the gateway's login is {actual} ({source}); the connection is {environment}")


async def _accounts(bridge: BridgeClient, found: Verification, conn: str, listed: AccountsList) -> None:
    if not found.add("accounts", bool(listed.accounts),
                     f"{len(listed.accounts)} account(s): {', '.join(listed.accounts)}" if listed.accounts
                     else "the login holds no brokerage account"):
        return
    titles: dict[str, dict[str, Any]] = {}
    try:
        portfolio = await bridge.raw("accounts.portfolio", Empty())
        titles = {a["account_id"]: a for a in (portfolio or {}).get("accounts", []) if isinstance(a, dict)}
    except BridgeError as exc:
        log.info("portfolio accounts of %s not read: %s", conn, exc.code)
    read: list[ReadAccount] = []
    problems: list[str] = []
    for account_id in listed.accounts:
        info = titles.get(account_id, {})
        try:
            summary = await bridge.summary(account_id)
        except BridgeError as exc:
            problems.append(f"{account_id}: {_bridge_failure(exc, conn)}")
            continue
        read.append(ReadAccount(account_id=account_id, title=info.get("title"),
                                account_type=summary.account_type or info.get("type"),
                                currency=summary.currency or info.get("currency"),
                                net_liquidation=summary.net_liquidation))
    detail = "; ".join(problems) if problems else ", ".join(
        f"{a.account_id}: net liquidation {a.net_liquidation} {a.currency or ''}".strip() for a in read)
    if found.add("summaries", not problems, detail):
        found.accounts = read


@dataclass
class Disclosures:
    """What compliance holds for the owner in the connection's environment (None: it did not answer)."""

    acknowledged: list[str] | None
    missing: list[str] | None
    problem: str = ""


async def read_disclosures(broker: Any, conn: str, user_id: str, account_id: str | None,
                           timeout_s: float) -> Disclosures:
    """`compliance.status` of the connection: the required disclosures and which are still missing."""
    body = {"user_id": user_id, "account_id": account_id or "NONE"}
    try:
        status = await Rpc(broker).call(Subjects(conn).compliance_status, body, timeout_s)
    except RpcUnavailable as exc:
        problem = f"compliance of {conn} {'did not answer in time' if exc.sent else 'is not running'}"
        return Disclosures(None, None, problem)
    except RpcError as exc:
        return Disclosures(None, None, f"compliance.status: {exc.code}: {exc.message}")
    states = status.get("disclosures") or []
    missing = list(status.get("missing_acknowledgments") or [])
    return Disclosures([d["id"] for d in states if d.get("acknowledged")], missing)


async def acknowledge(broker: Any, conn: str, user_id: str, environment: str, disclosures: list[str],
                      timeout_s: float) -> None:
    """Forward the acknowledgment to compliance (which owns acknowledgments); its errors become ours."""
    body = {"user_id": user_id, "disclosures": disclosures, "environment": environment}
    try:
        await Rpc(broker).call(Subjects(conn).compliance_acknowledge, body, timeout_s)
    except RpcUnavailable as exc:
        if exc.sent:
            raise ServiceError(ErrorCode.TIMEOUT, f"compliance of connection {conn} did not answer in time; "
                               "ask again (acknowledging twice is harmless)") from None
        raise ServiceError(ErrorCode.GATEWAY_UNAVAILABLE, f"compliance of connection {conn} is not running; "
                           "nothing was acknowledged") from None
    except RpcError as exc:
        try:
            code = ErrorCode(exc.code)
        except ValueError:
            code = ErrorCode.INTERNAL
        raise ServiceError(code, f"compliance: {exc.message}", exc.details, retryable=exc.retryable) from None
