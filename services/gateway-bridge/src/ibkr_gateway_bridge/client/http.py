"""The httpx client of the bridge: TLS to the gateway, keep-alive pool, timeouts, no cookie jar."""

from __future__ import annotations

import logging
import ssl

import httpx

from ibkr_common.settings import SettingsError
from ibkr_gateway_bridge.client.wire import LeanTransport
from ibkr_gateway_bridge.settings import BridgeSettings

log = logging.getLogger(__name__)

API_PREFIX = "/v1/api"
CA_VARIABLE = "IBKR_GATEWAY_CA_FILE"


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


def make_http(settings: BridgeSettings) -> httpx.AsyncClient:
    """One keep-alive client with a small pool and explicit timeouts (on the lean transport by default)."""
    verify = tls_verify(settings)
    transport = None
    if settings.http_transport == "lean":
        transport = LeanTransport(verify=verify, max_connections=settings.max_connections, keepalive_expiry_s=30)
    return CookielessClient(
        base_url=settings.gateway_url + API_PREFIX,
        transport=transport,
        verify=verify,
        timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s),
        limits=httpx.Limits(max_connections=settings.max_connections,
                            max_keepalive_connections=settings.max_connections, keepalive_expiry=30),
        headers={"User-Agent": "ibkr-gateway-bridge", "Accept": "application/json"},
        follow_redirects=False,
        trust_env=False,
    )


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: the gateway's REST calls need no cookies (REFERENCE.md section 1)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class CookielessClient(httpx.AsyncClient):
    """An httpx client that never stores the gateway's cookies: nothing to leak, less work per call."""

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, value: object) -> None:
        return None


_NO_COOKIES = _NoCookies()
