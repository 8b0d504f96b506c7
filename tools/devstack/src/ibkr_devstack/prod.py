"""`make run-prod`: the production topology of docker-compose.yml, run as processes on this host (no Docker).

docker-compose.yml is the one source of truth: this harness reads it, with every `${...}` taken from a `.env`
it generates (a random value for each secret the file requires, and the values of the variables that
exist for the harness: loopback addresses and free ports, since processes share one network), and runs
each active service (profile `cpsim` on) the way compose would: after its `depends_on` conditions hold
(started, healthy by its own healthcheck, or completed successfully), with the command, environment and
env files compose would give its container, and health checked by the same test. So the migration job runs
first as the owner role, the provisioning job as NATS user `provision`, then each service as its own
process under its own NATS user, on PostgreSQL with scram passwords, against cpsim as the gateway, and
authz answering NATS's auth callout with a fresh issuer key and one person (`alice`, owner of the bootstrap
connection, her password in the `.env`) in its users file, and the operator console as NATS user `console`
and database role `ibkr_console`, its first admin's generated password in `volumes/console-data/`.
The run's files (the generated `.env`, logs, data, `stack.json`) live in one folder, by default
`.var/prod/`, emptied at start.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ibkr_devstack.compose import Compose, Service, load_compose, required_variables, start_order
from ibkr_devstack.config import CPSIM_OPTIONS_LEVELS
from ibkr_devstack.processes import Child, pid_alive
from ibkr_devstack.prodparts import (
    argv_of,
    authz_variables,
    create_database,
    mounts_of,
    os_user,
    probe,
    service_environment,
    write_users_file,
)

PROFILES = frozenset({"cpsim"})
#: Variables of docker-compose.yml that exist for this harness: one host, so loopback and free ports.
LOOPBACK_VARIABLES = ("BIND_ADDRESS", "NATS_HOST", "POSTGRES_HOST", "GATEWAY_HOST")
PORT_VARIABLES = ("NATS_PORT", "NATS_HTTP_PORT", "POSTGRES_PORT", "GATEWAY_PORT", "BRIDGE_HTTP_PORT",
                  "SESSION_HTTP_PORT", "SYNC_HTTP_PORT", "COMPLIANCE_HTTP_PORT", "AUDIT_HTTP_PORT",
                  "REGISTRY_HTTP_PORT", "AUTHZ_HTTP_PORT", "CONSOLE_PORT", "CONSOLE_HTTP_PORT")
RESTARTING = ("always", "unless-stopped", "on-failure")


class StackFailed(RuntimeError):
    """A service did not come up (its log's tail is in the message)."""


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on loopback right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def generated_variables(compose_text: str) -> dict[str, str]:
    """The harness's `.env`: a fresh secret for every required variable, loopback, free ports."""
    variables = {name: "p" + secrets.token_hex(24) for name in required_variables(compose_text)}
    variables.update(dict.fromkeys(LOOPBACK_VARIABLES, "127.0.0.1"))
    variables.update(zip(PORT_VARIABLES, map(str, free_ports(len(PORT_VARIABLES))), strict=True))
    variables["IBKR_OPTIONS_LEVELS"] = CPSIM_OPTIONS_LEVELS  # the simulator's account, as it grants it
    return variables


class ProdStack:
    """docker-compose.yml's services as processes: `up()` returns once every one is running and healthy."""

    def __init__(self, root: Path, workdir: Path, *, echo: bool = True, variables: Mapping[str, str] | None = None,
                 profiles: frozenset[str] = PROFILES) -> None:
        self.root = root.resolve()
        self.workdir = workdir.resolve()
        self.echo = echo
        compose_file = self.root / "docker-compose.yml"
        self.variables = (generated_variables(compose_file.read_text()) | authz_variables(self.workdir)
                          | dict(variables or {}))
        self.compose: Compose = load_compose(compose_file, self.variables)
        self.services: dict[str, Service] = self.compose.active(set(profiles))
        self.order = start_order(self.services)
        self.children: dict[str, Child] = {}
        self.environments: dict[str, dict[str, str]] = {}
        self.restarts: dict[str, int] = dict.fromkeys(self.services, 0)
        self._events = {name: {kind: threading.Event() for kind in ("started", "healthy", "completed")}
                        for name in self.services}
        self.stopping = threading.Event()
        self._released = threading.Event()  # children die with the thread that started them: keep it alive
        self._lock = threading.Lock()
        self.failure: str | None = None
        self._threads: list[threading.Thread] = []

    # ---- bring-up ---------------------------------------------------------------------------------

    def up(self, timeout_s: float = 180.0) -> None:
        """Start everything in compose's order; raise StackFailed naming the first service that failed."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o711)  # PostgreSQL runs as its own user and must reach its data folder
        for folder in ("logs", "run", "volumes"):
            (self.workdir / folder).mkdir(exist_ok=True)
            (self.workdir / folder).chmod(0o711)
        env_file = self.workdir / ".env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in sorted(self.variables.items())))
        env_file.chmod(0o600)
        write_users_file(self.variables)
        for name in self.order:
            thread = threading.Thread(target=self._bring_up, args=(name,), name=f"up-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()
        deadline = time.monotonic() + timeout_s
        while not all(self._target(name).is_set() for name in self.services):
            if self.failure or self.stopping.is_set():
                raise StackFailed(self.failure or "stopped during start-up")
            if time.monotonic() > deadline:
                waiting = [n for n in self.services if not self._target(n).is_set()]
                raise StackFailed(f"not up after {timeout_s:.0f} s: {', '.join(waiting)}")
            time.sleep(0.05)
        watcher = threading.Thread(target=self._watch, name="watch", daemon=True)
        self._threads.append(watcher)
        watcher.start()
        self._write_info()

    def _target(self, name: str) -> threading.Event:
        """What `up()` waits for: healthy if checked, completed for a one-off job, else started."""
        service, events = self.services[name], self._events[name]
        if service.healthcheck:
            return events["healthy"]
        return events["completed"] if service.restart == "no" else events["started"]

    def _fail(self, name: str, why: str) -> None:
        with self._lock:
            if self.failure is None:
                tail = "\n".join(self.children[name].lines[-40:]) if name in self.children else ""
                self.failure = f"{name}: {why}" + (f"\n--- {name} log ---\n{tail}" if tail else "")
        self.stopping.set()

    def _await(self, name: str, dependency: str, condition: str) -> bool:
        kind = {"service_started": "started", "service_healthy": "healthy",
                "service_completed_successfully": "completed"}.get(condition)
        if kind is None:
            self._fail(name, f"unknown depends_on condition {condition!r}")
            return False
        event = self._events[dependency][kind]
        while not event.wait(0.05):
            if self.stopping.is_set():
                return False
        return True

    def _bring_up(self, name: str) -> None:
        try:
            service = self.services[name]
            if all(self._await(name, dep, cond) for dep, cond in service.depends_on.items()):
                self._start(service)
        except Exception as exc:
            self._fail(name, f"{type(exc).__name__}: {exc}")
        self._released.wait()

    def _start(self, service: Service) -> None:
        name = service.name
        rundir = self.workdir / "run" / name
        rundir.mkdir(parents=True, exist_ok=True)
        mounts = mounts_of(service, self.compose, self.workdir)
        env = service_environment(service, self.compose, mounts)
        argv = argv_of(service, env, mounts, rundir)
        postgres = (service.image or "").startswith("postgres:")
        child = Child(name, argv, env, cwd=rundir, echo=self.echo, log_path=self.workdir / "logs" / f"{name}.log",
                      user=os_user() if postgres else None)
        self.environments[name] = env
        self.children[name] = child
        child.start()
        if postgres:
            create_database(env)
        self._events[name]["started"].set()
        if service.healthcheck:
            self._until_healthy(service, child, env, rundir)
        elif service.restart == "no":
            self._until_done(name, child)

    def _until_done(self, name: str, child: Child) -> None:
        while child.alive():
            if self.stopping.wait(0.05):
                return
        code = child.proc.returncode if child.proc else None
        if code == 0:
            self._events[name]["completed"].set()
        else:
            self._fail(name, f"exited with {code}")

    def _healthy_now(self, service: Service, child: Child, env: dict[str, str], rundir: Path) -> bool:
        check = service.healthcheck
        assert check is not None
        return probe(check, env, rundir)

    def _until_healthy(self, service: Service, child: Child, env: dict[str, str], rundir: Path) -> None:
        check = service.healthcheck
        assert check is not None
        began, failures = time.monotonic(), 0
        while not self.stopping.is_set():
            if not child.alive():
                self._fail(service.name, f"exited with {child.proc.returncode if child.proc else '?'} "
                                         "before it was healthy")
                return
            if self._healthy_now(service, child, env, rundir):
                self._events[service.name]["healthy"].set()
                return
            starting = time.monotonic() - began < check.start_period_s
            if not starting:
                failures += 1
                if failures >= check.retries:
                    self._fail(service.name, f"unhealthy: {' '.join(check.test[1:])}")
                    return
            self.stopping.wait(check.start_interval_s if starting else check.interval_s)

    # ---- running ----------------------------------------------------------------------------------

    def _watch(self) -> None:
        """Restart what exits, as compose's restart policy says (up to 5 times each), until stopped."""
        while not self.stopping.wait(0.2):
            for name, child in list(self.children.items()):
                policy = self.services[name].restart
                code = child.proc.returncode if child.proc else None
                if child.alive() or policy not in RESTARTING or (policy == "on-failure" and code == 0):
                    continue
                if self.restarts[name] >= 5:
                    self._fail(name, f"keeps exiting (code {code})")
                    break
                self.restarts[name] += 1
                print(f"prodstack: {name} exited with {code}; restart {self.restarts[name]}/5", file=sys.stderr)
                child.start()
        self._released.wait()

    def down(self) -> None:
        """Stop every process, dependents first."""
        self.stopping.set()
        for name in reversed(self.order):
            if name in self.children:
                self.children[name].stop()
        self._released.set()
        for thread in self._threads:
            thread.join(timeout=5)
        (self.workdir / "stack.json").unlink(missing_ok=True)

    # ---- what it runs -----------------------------------------------------------------------------

    def log(self, name: str) -> str:
        """The service's output so far."""
        path = self.workdir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def nats_url(self, user: str | None = None, password: str | None = None) -> str:
        """`nats://[user:password@]127.0.0.1:<port>` of the run's NATS."""
        auth = f"{user}:{password}@" if user else ""
        return f"nats://{auth}127.0.0.1:{self.variables['NATS_PORT']}"

    def database_url(self, user: str, password: str, database: str = "ibkr") -> str:
        """A psycopg URL of the run's PostgreSQL."""
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{self.variables['POSTGRES_PORT']}/{database}"

    def http_urls(self) -> dict[str, str]:
        """Each service's operator endpoint base URL (health, readiness, metrics)."""
        return {name: f"http://127.0.0.1:{env['IBKR_HTTP_PORT']}" for name, env in self.environments.items()
                if "IBKR_HTTP_PORT" in env}

    def console_url(self) -> str | None:
        """Where the operator console serves its pages (None when the compose file has no console)."""
        env = self.environments.get("console")
        return f"http://127.0.0.1:{env['IBKR_CONSOLE_PORT']}" if env and "IBKR_CONSOLE_PORT" in env else None

    def info(self) -> dict[str, Any]:
        """What `stack.json` says (no secret: those are in the `.env` and the files it names)."""
        connection = self.environments.get("gateway-bridge", {}).get("IBKR_CONNECTION", "paper")
        console = self.environments.get("console", {})
        return {
            "connection": connection,
            "nats_url": self.nats_url(),
            "nats_monitor": f"http://127.0.0.1:{self.variables['NATS_HTTP_PORT']}",
            "gateway_url": f"https://127.0.0.1:{self.variables['GATEWAY_PORT']}",
            "database_url": f"postgresql://127.0.0.1:{self.variables['POSTGRES_PORT']}/ibkr",
            "http": self.http_urls(),
            "console_url": self.console_url(),
            "console_admin_file": console.get("IBKR_CONSOLE_ADMIN_FILE"),
            "env_file": str(self.workdir / ".env"),
            "person": {"user": self.variables["AUTHZ_PERSON"], "password": "AUTHZ_PERSON_PASSWORD in env_file",
                       "users_file": str(Path(self.variables["AUTHZ_USERS_DIR"]) / "users.json")},
            "logs": str(self.workdir / "logs"),
            "pids": {name: child.pid for name, child in self.children.items()},
        }

    def _write_info(self) -> None:
        path = self.workdir / "stack.json"
        path.write_text(json.dumps(self.info(), indent=2))


def main() -> int:
    """`make run-prod`: run in the foreground from the repository root; Ctrl-C stops it."""
    root = Path.cwd()
    workdir = root / ".var" / "prod"
    pid_file = root / ".var" / "prod.pid"
    if pid_file.exists() and pid_file.read_text().strip().isdigit() and pid_alive(int(pid_file.read_text())):
        print(f"prodstack: already running here (pid {pid_file.read_text().strip()})", file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    pid_file.write_text(str(os.getpid()))
    stack = ProdStack(root, workdir)
    signal.signal(signal.SIGTERM, lambda *_: stack.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stack.stopping.set())
    try:
        try:
            stack.up()
        except StackFailed as exc:
            print(f"prodstack: {exc}", file=sys.stderr)
            return 0 if stack.failure is None else 1
        info = stack.info()
        print("\nproduction topology is up (Ctrl-C stops everything)\n"
              + "\n".join(f"  {k:<18}: {json.dumps(v) if isinstance(v, dict) else v}"
                          for k, v in info.items() if k != "pids")
              + f"\n  {'stack file':<18}: {workdir / 'stack.json'}\n", flush=True)
        while not stack.stopping.wait(0.5):
            pass
        if stack.failure:
            print(f"prodstack: {stack.failure}", file=sys.stderr)
            return 1
        return 0
    finally:
        stack.down()
        pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
