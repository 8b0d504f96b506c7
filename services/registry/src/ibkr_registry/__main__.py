"""`ibkr-registry` / `python -m ibkr_registry`."""

from __future__ import annotations

from ibkr_common.service import run_service
from ibkr_registry.app import build_app
from ibkr_registry.settings import RegistrySettings


def main() -> None:
    """Run the registry until stopped."""
    run_service("registry", RegistrySettings, build_app)


if __name__ == "__main__":
    main()
