"""The httpx client of the bridge: TLS to the gateway, a small keep-alive pool, timeouts, no cookies.

Everything here is httpx's own machinery (its default transport over httpcore); `sniffio` is a
dependency of the bridge because httpcore otherwise tries to import it on every request.
"""

from __future__ import annotations

import logging
import ssl
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from ibkr_common.settings import SettingsError
from ibkr_gateway_bridge.settings import BridgeSettings

log = logging.getLogger(__name__)

API_PREFIX = "/v1/api"
CA_VARIABLE = "IBKR_GATEWAY_CA_FILE"
#: Seconds an idle keep-alive connection to the gateway is kept.
KEEPALIVE_EXPIRY_S = 30.0


def tls_verify(settings: BridgeSettings) -> ssl.SSLContext | bool:
    """The CA file's context when configured; otherwise False (the gateway's self-signed cert), with a warning.

    A CA file that is missing or unreadable is a configuration error naming IBKR_GATEWAY_CA_FILE
    (SettingsError: exit 2 at start), never a raw FileNotFoundError / SSLError from deep inside ssl.
    """
    if not settings.gateway_ssl:
        return True
    ca_file = settings.gateway_ca_file
    if ca_file is None:
        log.warning("%s is unset: accepting the gateway's self-signed certificate unverified", CA_VARIABLE)
        return False
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except FileNotFoundError:
        problem = "no such file"
    except IsADirectoryError:
        problem = "is a directory, not a certificate file"
    except PermissionError:
        problem = "not readable (permission denied)"
    except (ssl.SSLError, OSError, ValueError) as exc:
        problem = f"not a usable PEM certificate or CA bundle ({type(exc).__name__}: {exc})"
    message = f"{CA_VARIABLE}={ca_file}: {problem}"
    log.error("invalid configuration: %s", message)
    raise SettingsError(f"invalid configuration:\n  {message}")


def pem_verify(conn: str, use_ssl: bool, ca_pem: str | None) -> ssl.SSLContext | bool:
    """TLS verification of a registry connection's gateway, from its `gateway.ca_pem` text, held in memory only.

    Unset: the gateway's self-signed certificate is accepted unverified (with a warning), as for
    IBKR_GATEWAY_CA_FILE. A PEM the ssl module cannot load makes a context that trusts no certificate:
    every call then fails `tls_verify_failed`, never falls back to no verification. The PEM text itself
    is never logged (only why it could not be used)."""
    if not use_ssl:
        return True
    if ca_pem is None:
        log.warning("connection %s has no gateway.ca_pem: accepting its gateway's self-signed certificate "
                    "unverified", conn)
        return False
    try:
        return ssl.create_default_context(cadata=ca_pem)
    except (ssl.SSLError, ValueError) as exc:
        log.error("connection %s: gateway.ca_pem is not a usable PEM certificate (%s); its gateway is trusted "
                  "by nothing until the registry has a usable one", conn, type(exc).__name__)
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies (CERT_REQUIRED, hostname) against no CA


def refusing_cookie_jar() -> CookieJar:
    """A cookie jar whose policy accepts no cookie from any domain (so it never sends one either).

    The gateway's REST calls need no cookies (they matter only for its websocket): keeping none means
    no session id to leak. `allowed_domains=[]` is the standard library's documented way to say so.
    """
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def make_http(settings: BridgeSettings, verify: ssl.SSLContext | bool | None = None) -> httpx.AsyncClient:
    """One httpx client on its default transport: at most IBKR_BRIDGE_MAX_CONNECTIONS connections, kept alive.

    The pool stays small on purpose: the limiter paces the gateway at ~10 requests/s, and httpx's pool
    scans every connection and waiter per request (PERFORMANCE.md). `verify` None: from the settings
    (`tls_verify`); a registry connection passes its own (`pem_verify`).
    """
    return httpx.AsyncClient(
        base_url=settings.gateway_url + API_PREFIX,
        verify=tls_verify(settings) if verify is None else verify,
        cookies=refusing_cookie_jar(),
        timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s),
        limits=httpx.Limits(max_connections=settings.max_connections,
                            max_keepalive_connections=settings.max_connections, keepalive_expiry=KEEPALIVE_EXPIRY_S),
        headers={"User-Agent": "ibkr-gateway-bridge", "Accept": "application/json"},
        follow_redirects=False,
        trust_env=False,
    )
