"""The one place where HTTP meets Client Portal: limiter, pre-flights, quirks and error mapping.

Every call goes `Gateway.call(method, template, path=..., ...)`: the template
(`/iserver/account/{accountId}/orders`) is what the limiter keys on and what the gateway.call event
reports, so account numbers never leave. The answer is the gateway's parsed JSON; the API sections
(`ClientPortal`) turn it into typed models.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.trace import SpanKind, StatusCode

from ibkr_common.ops.tracing import tracer
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_gateway_bridge.client.http import CA_VARIABLE, make_http
from ibkr_gateway_bridge.limiter import PriorityLimiter, RateLimited
from ibkr_gateway_bridge.settings import BridgeSettings

log = logging.getLogger(__name__)
__all__ = ["CallRecord", "Gateway", "GatewayError"]

_PATH_VALUE = re.compile(r"^[A-Za-z0-9._@;:,/-]{1,200}$")
#: Paths whose bodies may carry session ids or usernames: never quoted in errors or logs.
SECRET_PATHS = ("/tickle", "/sso/", "/iserver/auth/", "/logout", "/iserver/reauthenticate")
NO_BRIDGE = "no bridge"
ACCOUNTS_FIRST = "query /accounts first"
PORTFOLIO_FIRST = "portfolio/accounts first"
RETRY_WAIT_S = 7.0
_TRACER = tracer("ibkr_gateway_bridge.gateway")


class GatewayError(ServiceError):
    """A Client Portal call failed; `maybe_delivered` says a non-GET may have reached the gateway."""

    def __init__(
        self, code: ErrorCode, message: str, details: dict[str, Any] | None = None, *,
        status: int | None = None, gateway_error: str | None = None, maybe_delivered: bool = False,
    ) -> None:
        super().__init__(code, message, details or {})
        self.status = status
        self.gateway_error = gateway_error
        self.maybe_delivered = maybe_delivered


@dataclass(frozen=True)
class CallRecord:
    """What one Client Portal call looked like (the gateway.call event payload)."""

    method: str
    path: str
    status: int | None
    outcome: str
    latency_ms: float
    queue_wait_ms: float
    retries: int
    priority: str

    def payload(self) -> dict[str, Any]:
        return {
            "method": self.method, "path": self.path, "status": self.status, "outcome": self.outcome,
            "latency_ms": round(self.latency_ms, 3), "queue_wait_ms": round(self.queue_wait_ms, 3),
            "retries": self.retries, "priority": self.priority,
        }


def needs_of(template: str) -> str | None:
    """Which pre-flight a path needs: "accounts" (/iserver/accounts), "portfolio" or None."""
    if template.startswith(("/iserver/account", "/iserver/marketdata")) and template != "/iserver/accounts":
        return "accounts"
    if template.startswith("/portfolio/") and template not in ("/portfolio/accounts", "/portfolio/subaccounts"):
        return "portfolio"
    return None


def render(template: str, path: dict[str, Any] | None) -> str:
    """Fill a path template; values must be plain tokens (no `..`, no query characters)."""
    if not path:
        return template
    out = template
    for name, value in path.items():
        text = str(value)
        if not _PATH_VALUE.match(text) or ".." in text:
            raise ServiceError(ErrorCode.VALIDATION_ERROR, f"{name}: not a valid path value",
                               [{"field": name, "message": "not a valid path value"}])
        out = out.replace("{" + name + "}", text)
    return out


def _error_text(body: Any, raw: str) -> str:
    if isinstance(body, dict) and body.get("error") is not None:
        return str(body["error"])
    return raw.strip()[:300]


def _looks_html(content_type: str, raw: str) -> bool:
    return "html" in content_type or raw.lstrip()[:1] == "<"


def new_limiter(settings: BridgeSettings) -> PriorityLimiter:
    """A rate limiter for one gateway login, as the settings configure it (IBKR_RATE_LIMIT_*, queue time)."""
    return PriorityLimiter(
        settings.rate_limit_rps, penalty_s=settings.rate_limit_penalty_s, max_wait_s=settings.queue_timeout_s
    )


class Gateway:
    """The bridge's side of the Client Portal gateway: sends each call through the limiter, keeps what the
    current brokerage session has learnt (pre-flights done, `epoch`), and turns every failure into a
    typed GatewayError."""

    def __init__(
        self, settings: BridgeSettings, *, limiter: PriorityLimiter | None = None,
        http: httpx.AsyncClient | None = None, on_call: Callable[[CallRecord], None] | None = None,
        trust: str | None = None,
    ) -> None:
        self.settings = settings
        #: Where the CA that verifies this gateway comes from, as a tls_verify_failed error names it.
        self.trust = trust or CA_VARIABLE
        self.limiter = limiter or new_limiter(settings)
        self.http = http or make_http(settings)
        self.on_call = on_call
        self.accounts_ready = False
        self.portfolio_ready = False
        #: Counts brokerage sessions: whatever was learnt in an older epoch is gone at IBKR too.
        self.epoch = 0
        #: What the last calls showed (health output, metrics); None until a call tells.
        self.reachable: bool | None = None
        self.authenticated: bool | None = None
        self._preflight_lock = asyncio.Lock()

    async def aclose(self) -> None:
        """Close the httpx client (and its connections)."""
        await self.http.aclose()

    def session_lost(self) -> None:
        """Forget pre-flights: the next /iserver or /portfolio call repeats them (reconnect, 401, no bridge,
        an unhealthy auth status or tickle). A new epoch also drops what was learnt in the old session
        (snapshot streams, searched underliers, the live-orders cache)."""
        self.epoch += 1
        self.accounts_ready = False
        self.portfolio_ready = False

    async def _preflight(self, kind: str, priority: str) -> None:
        async with self._preflight_lock:
            if kind == "accounts" and not self.accounts_ready:
                await self.call("GET", "/iserver/accounts", priority=priority)
            elif kind == "portfolio" and not self.portfolio_ready:
                await self.call("GET", "/portfolio/accounts", priority=priority)

    async def init_brokerage(self, compete: bool = True) -> Any:
        """POST /iserver/auth/ssodh/init; a fresh brokerage session needs fresh pre-flights."""
        body = await self.call(
            "POST", "/iserver/auth/ssodh/init", body={"publish": True, "compete": compete},
            priority="session", quirks=False,
        )
        self.session_lost()
        return body

    async def call(
        self, method: str, template: str, *, path: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None, body: Any = None, priority: str = "account",
        retry_safe: bool | None = None, allow_empty: bool = False, quirks: bool = True,
        timeout_s: float | None = None, max_wait_s: float | None = None,
    ) -> Any:
        """One Client Portal call; returns the parsed JSON (None for an allowed empty body).

        GETs are retried once after a dropped connection, `no bridge` (after ssodh/init) and
        `query /accounts first` (after the pre-flight); other methods only when `retry_safe` and
        the gateway's 400 proves the request was not processed. A non-GET is never re-sent after
        it may have reached the gateway (GatewayError.maybe_delivered).
        """
        url = render(template, path)
        retry_safe = method == "GET" if retry_safe is None else retry_safe
        need = needs_of(template) if quirks else None
        if need == "accounts" and not self.accounts_ready:
            await self._preflight("accounts", priority)
        elif need == "portfolio" and not self.portfolio_ready:
            await self._preflight("portfolio", priority)
        key = f"{method} {template}"
        retries = 0
        queue_wait = 0.0
        started = time.perf_counter()
        status: int | None = None
        outcome = "ok"
        try:
            while True:
                try:
                    wait_limit = max_wait_s
                    if retries:  # the refused first attempt counted at IBKR too: allow one spacing period
                        wait_limit = max(max_wait_s or self.limiter.max_wait_s, RETRY_WAIT_S)
                    waited = await self.limiter.acquire(key, priority, wait_limit)
                except RateLimited as exc:
                    raise GatewayError(
                        ErrorCode.RATE_LIMITED, f"{template}: {exc.reason}",
                        {"retry_after": exc.retry_after_s, "path": template},
                    ) from None
                queue_wait += waited
                try:
                    response = await self._send(method, template, url, params, body, timeout_s)
                except _Dropped as exc:
                    self.session_lost()
                    if method == "GET" and retries == 0:
                        retries += 1
                        continue
                    raise exc.error from None
                finally:
                    self.limiter.release(key)
                status = response.status_code
                try:
                    return self._parse(response, template, allow_empty, maybe=method != "GET")
                except _Quirk as quirk:
                    if not quirks or retries > 0 or not retry_safe:
                        raise quirk.error from None
                    retries += 1
                    if quirk.kind == NO_BRIDGE:
                        await self.init_brokerage()
                    if quirk.kind in (NO_BRIDGE, ACCOUNTS_FIRST) and needs_of(template) == "accounts":
                        await self._preflight("accounts", priority)
                    if quirk.kind == PORTFOLIO_FIRST:
                        await self._preflight("portfolio", priority)
        except ServiceError as exc:
            outcome = str(exc.code)
            raise
        except asyncio.CancelledError:  # e.g. the order budget ended while the call was in flight
            outcome = "CANCELLED"
            raise
        except Exception:
            outcome = "INTERNAL"
            raise
        finally:
            self._record(method, template, status, outcome, started, queue_wait, retries, priority)

    def _record(self, method: str, template: str, status: int | None, outcome: str, started: float,
                queue_wait: float, retries: int, priority: str) -> None:
        total = (time.perf_counter() - started) * 1000
        record = CallRecord(method, template, status, outcome, max(0.0, total - queue_wait * 1000),
                            queue_wait * 1000, retries, priority)
        if outcome != "ok":
            log.info("%s %s -> %s %s (retries %d, connection %s)", method, template, status, outcome, retries,
                     self.settings.connection)
        if self.on_call is not None:
            try:
                self.on_call(record)
            except Exception:
                log.exception("gateway.call hook failed")

    async def _send(self, method: str, template: str, url: str, params: dict[str, Any] | None, body: Any,
                    timeout_s: float | None) -> httpx.Response:
        """One HTTP exchange, in a client span named after the path template (never the filled path)."""
        with _TRACER.start_as_current_span(
            f"{method} {template}", kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "url.template": template,
                        "server.address": self.settings.gateway_host, "server.port": self.settings.gateway_port},
        ) as span:
            try:
                response = await self._exchange(method, url, params, body, timeout_s)
            except Exception as exc:
                self.reachable = False
                error = exc.error if isinstance(exc, _Dropped) else exc
                reason = error.details.get("reason") if isinstance(error, GatewayError) \
                    and isinstance(error.details, dict) else None
                span.set_attribute("error.type", str(reason or type(error).__name__))
                raise
            self.reachable = True
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(StatusCode.ERROR)
            return response

    async def _exchange(self, method: str, url: str, params: dict[str, Any] | None, body: Any,
                        timeout_s: float | None) -> httpx.Response:
        content: bytes | None = None
        headers: dict[str, str] | None = None
        if method in ("POST", "PUT", "DELETE") and (body is not None or method != "DELETE"):
            content = json.dumps({} if body is None else body, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json"}
        extra: dict[str, Any] = {}
        if timeout_s is not None:
            extra["timeout"] = httpx.Timeout(timeout_s, connect=self.settings.connect_timeout_s)
        maybe = method != "GET"
        try:
            return await self.http.request(method, url, params=params, content=content, headers=headers, **extra)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            self.session_lost()
            untrusted = _certificate_problem(exc)
            if untrusted is not None:
                source = {"ca_file": str(self.settings.gateway_ca_file)} if self.trust == CA_VARIABLE \
                    else {"ca": self.trust}
                raise GatewayError(
                    ErrorCode.GATEWAY_UNAVAILABLE, f"the gateway's TLS certificate is not trusted ({self.trust})",
                    {"reason": "tls_verify_failed", "error": untrusted, **source},
                ) from None
            raise GatewayError(
                ErrorCode.GATEWAY_UNAVAILABLE, f"gateway not reachable ({type(exc).__name__})",
                {"reason": "connect", "error": type(exc).__name__},
            ) from None
        except httpx.TimeoutException as exc:
            raise GatewayError(
                ErrorCode.TIMEOUT, f"gateway did not answer within {timeout_s or self.settings.request_timeout_s} s",
                {"reason": "timeout", "error": type(exc).__name__}, maybe_delivered=maybe,
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise _Dropped(GatewayError(
                ErrorCode.GATEWAY_UNAVAILABLE, "gateway closed the connection without an answer",
                {"reason": "connection_dropped", "error": type(exc).__name__}, maybe_delivered=maybe,
            )) from None
        except httpx.HTTPError as exc:
            raise GatewayError(
                ErrorCode.GATEWAY_UNAVAILABLE, f"HTTP error talking to the gateway ({type(exc).__name__})",
                {"reason": "http_error", "error": type(exc).__name__}, maybe_delivered=maybe,
            ) from None

    def _parse(self, response: httpx.Response, template: str, allow_empty: bool, maybe: bool) -> Any:
        status = response.status_code
        raw = response.content.decode("utf-8", errors="replace")  # JSON is UTF-8; cheaper than charset sniffing
        content_type = response.headers.get("content-type", "").lower()
        secret = template.startswith(SECRET_PATHS)
        base = {"status": status, "path": template}
        if status == 429:
            retry_after = self.limiter.penalize(f"{response.request.method} {template}")
            raise GatewayError(ErrorCode.RATE_LIMITED, f"{template}: IBKR answered 429; backing off",
                               {**base, "retry_after": retry_after}, status=status)
        if status == 401:
            self.session_lost()
            self.authenticated = False
            raise GatewayError(ErrorCode.NOT_AUTHENTICATED, "the gateway has no session (401)", base, status=status)
        if _looks_html(content_type, raw) and raw.strip():
            title = re.search(r"(?is)<title>(.*?)</title>", raw)
            detail = {**base, "reason": "html_body", "title": title.group(1).strip()[:100] if title else None}
            raise GatewayError(ErrorCode.GATEWAY_UNAVAILABLE, f"gateway answered an HTML page ({status})", detail,
                               status=status, maybe_delivered=maybe)
        parsed: Any = None
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
                if 200 <= status < 300 and not allow_empty:
                    raise GatewayError(
                        ErrorCode.GATEWAY_UNAVAILABLE, f"gateway answered non-JSON ({status})",
                        {**base, "reason": "not_json", "body_start": None if secret else raw.strip()[:80]},
                        status=status, maybe_delivered=maybe,
                    ) from None
        text = _error_text(parsed, "" if secret else raw)
        if 200 <= status < 300:
            if parsed is None and not allow_empty and not raw.strip():
                raise GatewayError(ErrorCode.GATEWAY_UNAVAILABLE, f"gateway answered an empty body ({status})",
                                   {**base, "reason": "empty_body"}, status=status, maybe_delivered=maybe)
            if isinstance(parsed, dict) and parsed.get("error") == "no session":
                self.session_lost()
                self.authenticated = False
                raise GatewayError(ErrorCode.NOT_AUTHENTICATED, "the gateway has no session", base, status=status)
            if template == "/iserver/accounts":
                self.accounts_ready = True
            elif template in ("/portfolio/accounts", "/portfolio/subaccounts"):
                self.portfolio_ready = True
            return parsed if parsed is not None else (raw if raw.strip() else None)
        low = text.lower()
        if status == 400:
            if NO_BRIDGE in low:
                self.session_lost()
                self.authenticated = False
                raise _Quirk(NO_BRIDGE, GatewayError(
                    ErrorCode.NOT_AUTHENTICATED, "the brokerage session is not open (no bridge)",
                    {**base, "gateway_error": text}, status=status))
            if ACCOUNTS_FIRST in low:
                # a new brokerage session (a restarted gateway): what the old one learnt is gone too
                self.accounts_ready = False
                self.epoch += 1
                raise _Quirk(ACCOUNTS_FIRST, GatewayError(
                    ErrorCode.GATEWAY_UNAVAILABLE, "the gateway wants /iserver/accounts first",
                    {**base, "gateway_error": text}, status=status))
            if PORTFOLIO_FIRST in low:
                self.portfolio_ready = False
                raise _Quirk(PORTFOLIO_FIRST, GatewayError(
                    ErrorCode.GATEWAY_UNAVAILABLE, "the gateway wants /portfolio/accounts first",
                    {**base, "gateway_error": text}, status=status))
            code = ErrorCode.NOT_FOUND if ("not valid" in low or "not found" in low or "doesn't exist" in low) \
                else ErrorCode.VALIDATION_ERROR
            raise GatewayError(code, f"IBKR refused the request: {text or 'bad request'}",
                               {**base, "gateway_error": text}, status=status, gateway_error=text)
        if status == 404:
            reason = "access_denied" if "access denied" in low else "not_found"
            code = ErrorCode.GATEWAY_UNAVAILABLE if reason == "access_denied" else ErrorCode.NOT_FOUND
            raise GatewayError(code, f"gateway answered 404 ({reason})", {**base, "reason": reason}, status=status)
        raise GatewayError(
            ErrorCode.GATEWAY_UNAVAILABLE, f"gateway answered {status}" + (f": {text}" if text else ""),
            {**base, "gateway_error": text or None}, status=status, gateway_error=text or None,
            maybe_delivered=maybe and status >= 500,
        )


def _certificate_problem(exc: BaseException) -> str | None:
    """The verification failure behind a connect error (a CA that did not sign the gateway's cert), if any."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or seen.reason or "certificate verify failed")[:200]
        seen = seen.__cause__ or seen.__context__
    return None


class _Dropped(Exception):
    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


class _Quirk(Exception):
    def __init__(self, kind: str, error: GatewayError) -> None:
        super().__init__(error.message)
        self.kind = kind
        self.error = error
