"""TLS to the gateway (IBKR_GATEWAY_CA_FILE), against cpsim's self-signed HTTPS."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import pytest

from cpsim.tls import self_signed
from ibkr_common.messages.bridge import SessionStatus
from ibkr_common.settings import SettingsError
from ibkr_gateway_bridge.app import build_app
from ibkr_gateway_bridge.client import ClientPortal, Gateway, GatewayError
from ibkr_gateway_bridge.client.http import tls_verify
from ibkr_gateway_bridge.settings import BridgeSettings

pytestmark = pytest.mark.connected


def settings_for(cpsim_url: str, ca_file: Path | None = None) -> BridgeSettings:
    host, port = cpsim_url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    extra: dict[str, Any] = {} if ca_file is None else {"IBKR_GATEWAY_CA_FILE": str(ca_file)}
    return BridgeSettings(IBKR_GATEWAY_HOST=host, IBKR_GATEWAY_PORT=int(port), IBKR_GATEWAY_SSL=True, **extra)


def cpsim_certificate(cpsim_url: str, directory: Path) -> Path:
    """cpsim's own (self-signed) certificate, as it presents it, written to a file."""
    host, port = cpsim_url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    path = directory / "cpsim.pem"
    path.write_text(ssl.get_server_certificate((host, int(port))))
    return path


async def test_unset_ca_file_accepts_the_self_signed_certificate_with_a_warning(
        cpsim_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        app = build_app(settings_for(cpsim_url))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "IBKR_GATEWAY_CA_FILE" in r.message]
    assert warnings and "self-signed" in warnings[0].message
    portal = app.bridge_service.portal  # type: ignore[attr-defined]
    try:
        assert isinstance(await portal.auth_status(), SessionStatus)  # JSON over TLS (session state may vary)
    finally:
        await portal.aclose()


async def test_a_ca_that_did_not_sign_the_gateway_certificate_fails_typed(
        own_bridge: Any, cpsim_url: str, tmp_path: Path) -> None:
    other, _ = self_signed(tmp_path)  # a certificate of its own, not cpsim's
    async with own_bridge("tls", IBKR_GATEWAY_CA_FILE=str(other)) as bridge:
        for _ in range(2):  # answered, not crashed, and again
            error = await bridge.error("session.status", {})
            assert error["code"] == "GATEWAY_UNAVAILABLE", error
            assert error["details"]["reason"] == "tls_verify_failed"
            assert "IBKR_GATEWAY_CA_FILE" in error["message"]
        error = await bridge.error("accounts.summary", {"account_id": "DU1234567"})
        assert error["code"] == "GATEWAY_UNAVAILABLE"


async def test_cpsim_certificate_as_ca_is_verified_and_accepted(cpsim_url: str, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(cpsim_url, cpsim_certificate(cpsim_url, tmp_path))
    with caplog.at_level(logging.WARNING):
        context = tls_verify(settings)
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert not [r for r in caplog.records if "IBKR_GATEWAY_CA_FILE" in r.message]
    portal = ClientPortal(Gateway(settings))
    try:
        assert isinstance(await portal.auth_status(), SessionStatus)  # JSON over TLS (session state may vary)
    finally:
        await portal.aclose()


async def test_the_same_ca_rejects_a_gateway_with_another_certificate(cpsim_url: str, tmp_path: Path) -> None:
    from cpsim.testing import start_cpsim

    settings = settings_for(cpsim_url, cpsim_certificate(cpsim_url, tmp_path))
    with start_cpsim() as other:  # a second gateway: its own freshly generated certificate
        portal = ClientPortal(Gateway(settings.model_copy(update={"gateway_port": other.port})))
        try:
            with pytest.raises(GatewayError) as info:
                await portal.auth_status()
        finally:
            await portal.aclose()
    assert info.value.code == "GATEWAY_UNAVAILABLE" and info.value.details["reason"] == "tls_verify_failed"


@pytest.mark.parametrize("problem", ["vanished", "garbage", "directory"])
def test_an_unusable_ca_file_is_a_clear_settings_error(cpsim_url: str, tmp_path: Path, problem: str) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    settings = settings_for(cpsim_url, ca)  # the settings check that the file exists; it can change later
    if problem == "vanished":
        ca.unlink()
    elif problem == "directory":
        ca.unlink()
        ca.mkdir()
    with pytest.raises(SettingsError) as info:
        build_app(settings)
    assert not isinstance(info.value, FileNotFoundError)
    text = str(info.value)
    assert f"IBKR_GATEWAY_CA_FILE={ca}" in text, text
    expected = {"vanished": "no such file", "garbage": "not a usable PEM", "directory": "directory"}[problem]
    assert expected in text, text
