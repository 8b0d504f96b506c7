"""Settings shared by every service, read from the environment (and `.env`).

Each variable is also accepted with the `VITE_` prefix used by existing front-end `.env` files.
A bad value stops the service at start with a message naming the variable and the rule.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, SettingsConfigDict

from ibkr_common.logs import mask_urls
from ibkr_common.subjects import all_connections_events

GATEWAY_IDLE_TIMEOUT_MS = 300_000
MIN_KEY_LENGTH = 32


def env(name: str, *extra_aliases: str) -> Any:
    """Field options for an environment variable `name`, also accepted as `VITE_<name>`."""
    return AliasChoices(name, f"VITE_{name}", *extra_aliases)


class SettingsError(SystemExit):
    """Raised at start when a setting is invalid; exits with code 2 and a readable message."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CommonSettings(BaseSettings):
    """Variables every service understands. Services subclass this for their own."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, populate_by_name=True, validate_default=True
    )

    connection: str = Field(
        "paper",
        validation_alias=env("IBKR_CONNECTION"),
        pattern=r"^[a-z0-9-]{1,32}$",
        description="Connection id: one Client Portal login; the subject root is ibkr.<connection>.",
    )
    gateway_host: str = Field(
        "localhost", validation_alias=env("IBKR_GATEWAY_HOST"), min_length=1,
        description="Host of the Client Portal Gateway (or cpsim).",
    )
    gateway_port: int = Field(
        5000, validation_alias=env("IBKR_GATEWAY_PORT"), ge=1, le=65535, description="Port of the gateway."
    )
    gateway_ssl: bool = Field(True, validation_alias=env("IBKR_GATEWAY_SSL"), description="HTTPS to the gateway.")
    gateway_ca_file: Path | None = Field(
        None,
        validation_alias=env("IBKR_GATEWAY_CA_FILE"),
        description="CA bundle or certificate to verify the gateway with; unset accepts its self-signed one.",
    )
    default_environment: Literal["paper", "live"] = Field(
        "paper", validation_alias=env("IBKR_DEFAULT_ENVIRONMENT"),
        description="paper or live: the environment this connection trades in; orders must declare the same.",
    )
    sync_interval_ms: int = Field(
        30_000, validation_alias=env("IBKR_SYNC_INTERVAL"), ge=1_000,
        description="Milliseconds between full syncs of accounts, positions and orders.",
    )
    tickle_interval_ms: int = Field(
        60_000, validation_alias=env("IBKR_TICKLE_INTERVAL"), ge=1_000,
        description="Milliseconds between tickles; must stay below the gateway's 5-minute idle timeout (300000).",
    )
    session_warning_minutes: int = Field(
        60, validation_alias=env("IBKR_SESSION_WARNING_MINUTES"), ge=1, le=24 * 60,
        description="Warn this many minutes before the session expires.",
    )
    encryption_key: SecretStr | None = Field(
        None,
        validation_alias=env("IBKR_ENCRYPTION_KEY", "VITE_ENCRYPTION_KEY"),
        description="Passphrase (at least 32 characters) from which the credential key is derived.",
    )
    old_encryption_keys: str = Field(
        "",
        validation_alias=env("IBKR_OLD_ENCRYPTION_KEYS"),
        description="Comma-separated earlier passphrases (each at least 32 characters), still accepted for "
        "decryption during rotation.",
    )
    nats_url: str = Field(
        "nats://127.0.0.1:4222", validation_alias=env("NATS_URL"), min_length=1,
        description="NATS server with JetStream.",
    )
    database_url: str = Field(
        "sqlite+aiosqlite:///.var/ibkr.db", validation_alias=env("DATABASE_URL"), min_length=1,
        description="SQLite for the embedded default; postgresql+psycopg://user:pw@host/db everywhere else.",
    )
    user_id: str = Field(
        "local",
        validation_alias=env("IBKR_USER_ID"),
        min_length=1,
        max_length=64,
        description="The user who owns this connection; rows are written under this user_id (RLS).",
    )
    enforce_ownership: bool = Field(
        False, validation_alias=env("IBKR_ENFORCE_OWNERSHIP"),
        description="Check the user_id of every request to the bootstrap connection against its owner "
        "(IBKR_USER_ID), FORBIDDEN otherwise. Connections from the registry are always checked.",
    )
    serve_connections: str = Field(
        "", validation_alias=env("IBKR_SERVE_CONNECTIONS"), max_length=256,
        description="Regular expression a registered connection's id must match in full for this instance to "
        "serve it (empty: every connection); the bootstrap connection is always served. Test runs sharing one "
        "NATS server keep to their own connections with it. Not a way to shard: the instances of a service on "
        "one NATS server share its queue group, so they must all be replicas of one configuration.",
    )
    events_stream: str = Field(
        "IBKR_EVENTS", validation_alias=env("IBKR_EVENTS_STREAM"), pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="JetStream stream of events.",
    )
    events_subjects: str = Field(
        all_connections_events(),
        validation_alias=env("IBKR_EVENTS_SUBJECTS"),
        description="Subjects the events stream covers (tests narrow it to their own connection).",
    )
    provision_streams: bool = Field(
        True, validation_alias=env("IBKR_PROVISION_STREAMS"),
        description="Create (or update) the events stream at start. false: only check that it exists, so the "
        "service's NATS user needs no right to create streams (production: `python -m ibkr_audit.provision` "
        "creates it first, as its own user).",
    )
    nats_inbox_prefix: str = Field(
        "_INBOX", validation_alias=env("IBKR_NATS_INBOX_PREFIX"), pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Prefix of this service's NATS reply inboxes; with one prefix per NATS user "
        "(_INBOX_<user>, see deploy/nats.conf) no user can read another's replies.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=env("IBKR_LOG_LEVEL"), description="DEBUG, INFO, WARNING or ERROR."
    )
    log_format: Literal["json", "text"] = Field(
        "json", validation_alias=env("IBKR_LOG_FORMAT"),
        description="json (one JSON object a line: service, connection, correlation and trace ids) or text.",
    )
    http_host: str = Field(
        "127.0.0.1", validation_alias=env("IBKR_HTTP_HOST"), min_length=1,
        description="Address of the operators' HTTP endpoints (/healthz, /readyz, /metrics); 0.0.0.0 in a container.",
    )
    http_port: int = Field(
        0, validation_alias=env("IBKR_HTTP_PORT"), ge=0, le=65535,
        description="Port of the operators' HTTP endpoints; 0 picks a free one (logged as `http listening on ...`).",
    )
    otlp_endpoint: str | None = Field(
        None, validation_alias=env("IBKR_OTLP_ENDPOINT"),
        description="OTLP/HTTP collector (http://host:4318) to export traces to; unset (and no "
        "OTEL_EXPORTER_OTLP_ENDPOINT) leaves tracing off.",
    )

    @field_validator("encryption_key")
    @classmethod
    def _key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_KEY_LENGTH} characters")
        return value

    @field_validator("old_encryption_keys")
    @classmethod
    def _old_keys_long_enough(cls, value: str) -> str:
        keys = [key.strip() for key in value.split(",") if key.strip()]
        short = [str(n) for n, key in enumerate(keys, 1) if len(key) < MIN_KEY_LENGTH]
        if short:
            raise ValueError(
                f"each comma-separated passphrase must be at least {MIN_KEY_LENGTH} characters "
                f"(entry {', '.join(short)} of {len(keys)} is shorter)"
            )
        return value

    @field_validator("serve_connections")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("gateway_ca_file", mode="before")
    @classmethod
    def _empty_ca_file_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("gateway_ca_file")
    @classmethod
    def _ca_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"must be an existing certificate file; {str(value)!r} is not a file")
        return value

    @field_validator("tickle_interval_ms")
    @classmethod
    def _below_idle_timeout(cls, value: int) -> int:
        if value >= GATEWAY_IDLE_TIMEOUT_MS:
            raise ValueError(
                f"must be below {GATEWAY_IDLE_TIMEOUT_MS} ms: "
                "the gateway ends a session after 5 minutes without a tickle"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("postgresql", "sqlite")):
            raise ValueError("must be a postgresql+psycopg:// or sqlite+aiosqlite:// URL")
        return value

    @property
    def gateway_url(self) -> str:
        """Base URL of the Client Portal Gateway, without the /v1/api suffix."""
        scheme = "https" if self.gateway_ssl else "http"
        return f"{scheme}://{self.gateway_host}:{self.gateway_port}"

    def secret_values(self) -> list[str]:
        """Every secret this process was given, to be masked wherever it could be logged: the value of each
        SecretStr field, each passphrase of a SECRET_FIELDS field, and the password (or NATS token) of every
        URL-valued setting (NATS_URL, DATABASE_URL, ...). Subclasses' fields are included."""
        found: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, str) and name in SECRET_FIELDS:
                found += [part.strip() for part in value.split(",") if part.strip()]
            elif isinstance(value, str) and "://" in value:
                found += url_secrets(value)
        return [value for value in found if value]


S = TypeVar("S", bound=BaseSettings)
SECRET_FIELDS = frozenset({"encryption_key", "old_encryption_keys"})
_TOKEN_SCHEMES = ("nats", "tls", "ws", "wss")


def url_secrets(value: str) -> list[str]:
    """The passwords in a URL or comma-separated URLs (`nats://user:pw@host`), and a NATS token
    (`nats://token@host`), percent-decoded."""
    found: list[str] = []
    for part in value.split(","):
        try:
            url = urlsplit(part.strip())
        except ValueError:
            continue
        if url.password:
            found.append(unquote(url.password))
        elif url.username and url.scheme in _TOKEN_SCHEMES:
            found.append(unquote(url.username))
    return found


def is_secret_field(cls: type[BaseSettings], field: str) -> bool:
    """A field whose value is never shown: one of SECRET_FIELDS, or typed SecretStr."""
    info = cls.model_fields.get(field)
    return field in SECRET_FIELDS or (info is not None and "SecretStr" in str(info.annotation))


def variable_name(cls: type[BaseSettings], field: str) -> str:
    """The environment variable behind a settings field (its first alias)."""
    info = cls.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices) and alias.choices:
        first = alias.choices[0]
        return first if isinstance(first, str) else field.upper()
    if isinstance(alias, str):
        return alias
    return field.upper()


def field_of(cls: type[BaseSettings], name: str) -> str:
    """The settings field behind a name that may be a field name or one of its aliases."""
    if name in cls.model_fields:
        return name
    for field, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and name in alias.choices:
            return field
        if alias == name:
            return field
    return name


def _aliases(cls: type[BaseSettings], field: str) -> list[str]:
    """Every environment variable that sets a field, in the order pydantic-settings tries them."""
    info = cls.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)] or [field.upper()]
    if isinstance(alias, str):
        return [alias]
    return [field.upper()]


def _dotenv_variables(cls: type[BaseSettings], overrides: dict[str, Any]) -> dict[str, str | None]:
    """The variables of the `.env` file(s) the settings read (names lower-cased, as pydantic-settings does)."""
    kwargs: dict[str, Any] = {}
    if "_env_file" in overrides:
        kwargs["env_file"] = overrides["_env_file"]
    if "_env_file_encoding" in overrides:
        kwargs["env_file_encoding"] = overrides["_env_file_encoding"]
    try:
        return dict(DotEnvSettingsSource(cls, **kwargs).env_vars)
    except (OSError, ValueError):  # only names the variable in an error message; never hides one
        return {}


def variable_set(cls: type[BaseSettings], field: str, overrides: dict[str, Any] | None = None) -> str:
    """The variable the user actually set for `field` (e.g. `VITE_IBKR_GATEWAY_PORT`), with where from.

    Follows pydantic-settings' order (arguments, then the environment, then `.env`); the first alias
    present in the first source that has one wins. Falls back to the field's first alias.
    """
    overrides = overrides or {}
    names = _aliases(cls, field)
    if field in overrides:
        return names[0]
    for name in names:
        if name in overrides:
            return name
    environ = {key.lower() for key in os.environ}
    for name in names:
        if name.lower() in environ:
            return name
    dotenv = _dotenv_variables(cls, overrides)
    for name in names:
        if name.lower() in dotenv:
            return f"{name} (in .env)"
    return names[0]


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Load settings or raise SettingsError naming every bad variable (as the user spelt it) and its rule."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = field_of(cls, str(err["loc"][0])) if err["loc"] else "?"
            raw = err.get("input")
            shown = "" if is_secret_field(cls, field) else \
                f" (got {(mask_urls(raw) if isinstance(raw, str) else raw)!r})"
            lines.append(f"{variable_set(cls, field, overrides)}: {err['msg']}{shown}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def exit_on_bad_settings(cls: type[S]) -> S:
    """Load settings for a service's main(); print the problem and exit 2 when invalid."""
    try:
        return load_settings(cls)
    except SettingsError as exc:
        print(f"{cls.__module__}: {exc.message}", file=sys.stderr)
        raise


#: Settings that hold a password inside a URL (`scheme://user:password@host`).
URL_FIELDS = frozenset({"nats_url", "database_url"})


def _url_has_password(url: str) -> bool:
    netloc = url.split("://", 1)[-1].split("/", 1)[0]
    return "@" in netloc and ":" in netloc.rsplit("@", 1)[0]


def vite_secret_warnings(settings: BaseSettings, **overrides: Any) -> list[str]:
    """A warning for each secret the user gave under a `VITE_` name (e.g. `VITE_ENCRYPTION_KEY`).

    The value is accepted, but Vite bundles every `VITE_` variable of the `.env` it reads into the
    browser code it builds, where anyone who loads the page can read it; the warning names the variable
    to use instead. Only secrets that are set count (and URLs only when they carry a password).
    """
    cls = type(settings)
    warnings = []
    for field in sorted((SECRET_FIELDS | URL_FIELDS) & set(cls.model_fields)):
        value = getattr(settings, field)
        if field in URL_FIELDS and not (isinstance(value, str) and _url_has_password(value)):
            continue
        if not value:
            continue
        used = variable_set(cls, field, overrides)
        if used.startswith("VITE_"):
            warnings.append(
                f"{used.split(' ', 1)[0]} holds a secret: Vite bundles every VITE_ variable into the browser "
                f"code it builds, where anyone who loads the page can read it. Accepted for now; rename it to "
                f"{variable_name(cls, field)}."
            )
    return warnings


class DatabaseServiceSettings(CommonSettings):
    """Settings of a service that keeps tables: when to run the migrations."""

    migrate_on_start: bool = Field(
        True, validation_alias=env("IBKR_MIGRATE_ON_START"),
        description="Run the database migrations at start (always on SQLite).",
    )
