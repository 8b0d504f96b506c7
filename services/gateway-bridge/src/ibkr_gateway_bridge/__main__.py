"""`python -m ibkr_gateway_bridge` / `ibkr-gateway-bridge`."""

from __future__ import annotations

from ibkr_common.service import run_service
from ibkr_gateway_bridge.app import build_app
from ibkr_gateway_bridge.settings import BridgeSettings


def main() -> None:
    run_service("gateway-bridge", BridgeSettings, build_app)


if __name__ == "__main__":
    main()
