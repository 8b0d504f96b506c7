"""What `make run` is configured with: read like the services read it (environment, `.env`, `VITE_` aliases)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import Field

from ibkr_common.settings import CommonSettings, SettingsError, env, load_settings

CPSIM_OPTIONS_LEVELS = "DU1234567=2"  # the simulator's default account and the level it grants it


class DevstackSettings(CommonSettings):
    """The common settings plus the variables only `make run` reads."""

    use_cpsim: bool = Field(
        True, validation_alias=env("IBKR_USE_CPSIM"),
        description="Start the Client Portal simulator (true) or use the gateway configured above (false).",
    )
    devstack_nats_port: int = Field(
        4222, validation_alias=env("IBKR_DEVSTACK_NATS_PORT"), ge=0, le=65535,
        description="Preferred port of the local NATS; a port already taken moves to a free one (0: any).",
    )
    devstack_gateway_port: int = Field(
        5000, validation_alias=env("IBKR_DEVSTACK_GATEWAY_PORT"), ge=0, le=65535,
        description="Preferred port of the simulator; a port already taken moves to a free one (0: any).",
    )
    devstack_console_port: int = Field(
        8080, validation_alias=env("IBKR_DEVSTACK_CONSOLE_PORT"), ge=0, le=65535,
        description="Preferred port of the operator console; a port already taken moves to a free one (0: any).",
    )


def load_stack_settings(root: Path, services: list[str], given: dict[str, dict[str, Any]] | None = None
                        ) -> DevstackSettings:
    """The settings `make run` starts the stack with, from the environment and `root/.env`.

    Each service's own settings class is checked too (with the values `given[service]` the devstack hands
    it, such as the registry's generated key), so a bad value stops `make run` before anything starts, with
    the message the service would print. Raises SettingsError.
    """
    dotenv = root / ".env"
    settings = load_settings(DevstackSettings, _env_file=dotenv)
    from ibkr_devstack.asyncapi import settings_class

    for service in services:
        cls = settings_class(f"ibkr_{service.replace('-', '_')}")
        try:
            load_settings(cls, _env_file=dotenv, **(given or {}).get(service, {}))
        except SettingsError as exc:
            raise SettingsError(f"{exc.message}\n  (checked for {service})") from None
    return settings


def explicitly_set(settings: CommonSettings, field: str) -> bool:
    """True when the user configured `field` (environment, `.env` or an alias), not left it at its default."""
    return field in settings.model_fields_set


def configured(root: Path, name: str) -> bool:
    """True when `name` (or its `VITE_` alias) is in the environment or in `root/.env`."""
    names = (name, f"VITE_{name}")
    dotenv = root / ".env"
    in_file = dotenv_values(dotenv) if dotenv.is_file() else {}
    return any(n in os.environ or n in in_file for n in names)
