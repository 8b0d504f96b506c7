"""The console's sign-in accounts (`console_users`): argon2 password hashes, a role, the owner acted for."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ibkr_common.clock import Clock, SystemClock
from ibkr_common.db.engine import make_sessionmaker
from ibkr_common.db.models import ConsoleUser

log = logging.getLogger("ibkr_console.users")
Role = Literal["viewer", "trader", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "trader", "admin")
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_hasher = PasswordHasher()
#: A hash to check against when the username is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def rank(role: str) -> int:
    """viewer 0 < trader 1 < admin 2 (-1 for anything else)."""
    return ROLES.index(role) if role in ROLES else -1  # type: ignore[arg-type]


@dataclass(frozen=True)
class Account:
    """A signed-in person as the console knows them (never the hash)."""

    username: str
    role: Role
    owner_user_id: str


class UserStore:
    """Reads and writes `console_users` (the console is its only writer)."""

    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        self.sessions = make_sessionmaker(engine)
        self.clock = clock or SystemClock()

    async def count(self) -> int:
        async with self.sessions() as session:
            return int((await session.execute(select(func.count()).select_from(ConsoleUser))).scalar_one())

    async def get(self, username: str) -> Account | None:
        async with self.sessions() as session:
            row = await session.get(ConsoleUser, username)
            return None if row is None else Account(row.username, row.role, row.owner_user_id)  # type: ignore[arg-type]

    async def create(self, username: str, password: str, role: Role, owner_user_id: str) -> Account:
        """Add an account; ValueError naming the field when a value is not acceptable."""
        if not USERNAME.match(username):
            raise ValueError("username: 1-64 letters, digits or _ . @ -")
        if role not in ROLES:
            raise ValueError(f"role: one of {', '.join(ROLES)}")
        if len(password) < 12:
            raise ValueError("password: at least 12 characters")
        if not owner_user_id or len(owner_user_id) > 64:
            raise ValueError("owner_user_id: 1-64 characters")
        hashed = await asyncio.to_thread(_hasher.hash, password)
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            if await session.get(ConsoleUser, username) is not None:
                raise ValueError(f"username: {username!r} exists")
            session.add(ConsoleUser(username=username, password_hash=hashed, role=role,
                                    owner_user_id=owner_user_id, created_at=now, updated_at=now))
        log.info("console user %s created (role %s)", username, role)
        return Account(username, role, owner_user_id)

    async def authenticate(self, username: str, password: str) -> Account | None:
        """The account when the password is right, else None (same work either way)."""
        async with self.sessions() as session:
            row = await session.get(ConsoleUser, username) if USERNAME.match(username) else None
        stored = row.password_hash if row is not None else _DUMMY_HASH
        try:
            await asyncio.to_thread(_hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        return Account(row.username, row.role, row.owner_user_id)  # type: ignore[arg-type]


async def ensure_first_admin(store: UserStore, path: Path, username: str, owner_user_id: str) -> bool:
    """With no user at all: create `username` (admin, acting for `owner_user_id`) with a generated password
    and write `{username, password, role, owner_user_id}` to `path` (0600). True when one was created."""
    if await store.count() > 0:
        return False
    password = secrets.token_urlsafe(18)
    await store.create(username, password, "admin", owner_user_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"username": username, "password": password, "role": "admin", "owner_user_id": owner_user_id},
                  out, indent=2)
    os.chmod(path, 0o600)
    log.info("first console admin %s created; its password is in %s", username, path)
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m ibkr_console.users add NAME --role ROLE --owner USER_ID [--password-file F]`: add an account
    to the database of DATABASE_URL (the password is asked for, never taken on the command line)."""
    import argparse
    import getpass
    import sys

    from ibkr_common.db.engine import make_engine
    from ibkr_common.settings import SettingsError, load_settings
    from ibkr_console.settings import ConsoleSettings

    parser = argparse.ArgumentParser(prog="python -m ibkr_console.users")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a console account")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--owner", required=True, help="the user_id the account acts for (a connection owner)")
    add.add_argument("--password-file", type=Path, help="read the password from this file (scripts)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(ConsoleSettings)
    except SettingsError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    if args.password_file:
        password = args.password_file.read_text().strip()
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 2

    async def run() -> None:
        engine = make_engine(settings.database_url)
        try:
            await UserStore(engine).create(args.username, password, args.role, args.owner)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(f"added {args.username} ({args.role}, acting for {args.owner})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
