"""The console's settings: the common ones plus where it listens and how its sessions are kept."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from ibkr_common.settings import DatabaseServiceSettings, env


class ConsoleSettings(DatabaseServiceSettings):
    """`IBKR_CONSOLE_*` beside the common variables (NATS_URL, DATABASE_URL, IBKR_CONNECTION, IBKR_USER_ID)."""

    console_host: str = Field(
        "127.0.0.1", validation_alias=env("IBKR_CONSOLE_HOST"), min_length=1,
        description="Address the operator console listens on (0.0.0.0 in a container, behind HTTPS).",
    )
    console_port: int = Field(
        8080, validation_alias=env("IBKR_CONSOLE_PORT"), ge=0, le=65535,
        description="Port of the operator console; 0 picks a free one (logged as `console listening on ...`).",
    )
    console_session_key: SecretStr | None = Field(
        None, validation_alias=env("IBKR_CONSOLE_SESSION_KEY"),
        description="Key that signs the console's session cookies (at least 32 characters); unset: a random "
        "key per start (everyone signs in again after a restart).",
    )
    console_secure_cookies: bool = Field(
        True, validation_alias=env("IBKR_CONSOLE_SECURE_COOKIES"),
        description="Mark the session cookie Secure (sent over HTTPS only). `make run` serves plain HTTP on "
        "127.0.0.1 and sets false; anywhere else serve the console over HTTPS and keep true.",
    )
    console_session_hours: int = Field(
        12, validation_alias=env("IBKR_CONSOLE_SESSION_HOURS"), ge=1, le=24 * 7,
        description="Hours a console sign-in lasts.",
    )
    console_admin_file: Path | None = Field(
        None, validation_alias=env("IBKR_CONSOLE_ADMIN_FILE"),
        description="When no console user exists yet: create the first admin (acting for IBKR_USER_ID) with a "
        "generated password and write both to this file (mode 0600). Unset: no user is created.",
    )
    console_admin_username: str = Field(
        "admin", validation_alias=env("IBKR_CONSOLE_ADMIN_USERNAME"), pattern=r"^[A-Za-z0-9_.@-]{1,64}$",
        description="Username of the first admin.",
    )
