"""The whole stack on the embedded default: nats-server (wheel), SQLite or DATABASE_URL, cpsim, services."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ibkr_common.logs import mask_urls
from ibkr_common.settings import SettingsError
from ibkr_devstack.config import CPSIM_OPTIONS_LEVELS, DevstackSettings, configured, explicitly_set, load_stack_settings
from ibkr_devstack.keys import registry_key, without_keys
from ibkr_devstack.processes import Child, pid_alive, python_module
from ibkr_devstack.state import PREVIOUS, set_aside_previous_run

#: In start order: the registry first, so the others find the registered connections when they start.
SERVICES = ("registry", "gateway-bridge", "session-keeper", "sync-worker", "audit", "compliance")
#: The operator console: started after the services (it reads them), not a NATS service itself.
CONSOLE = "console"
READY_TIMEOUT_S = 90.0
#: The second simulated login `make run` starts beside the bootstrap one (`sim_gateways` in stack.json), so a
#: connection can be registered, verified and traded at run time (`ibkr connections create ...`).
SPARE_GATEWAY = "spare"
SPARE_ACCOUNT = "DU7654321"


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int) -> int:
    """`preferred` when free, else any free port."""
    if preferred and port_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, child: Child, timeout: float, stop: threading.Event | None = None) -> bool:
    """True once `port` accepts connections; False on the child's exit, timeout, or as soon as `stop` is set."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            if not child.alive():
                return False
            stop.wait(0.05)
    return False


def service_exists(service: str) -> bool:
    """A service exists once its package has an entry point (`__main__`); stubs are never started."""
    module = f"ibkr_{service.replace('-', '_')}.__main__"
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LocalStack:
    """Starts, watches and stops every part; writes `.var/stack.json` when all are ready."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.var = root / ".var"
        self.stack_json = self.var / "stack.json"
        self.pid_file = self.var / "devstack.pid"
        self.children: list[Child] = []
        self.sim_gateways: dict[str, str] = {}
        self.stop_requested = threading.Event()
        self.info: dict[str, Any] = {}

    @property
    def stopping(self) -> bool:
        return self.stop_requested.is_set()

    def already_running(self) -> int | None:
        if self.pid_file.exists():
            try:
                pid = int(self.pid_file.read_text().strip())
            except ValueError:
                return None
            if pid != os.getpid() and pid_alive(pid):
                return pid
        return None

    def _fail(self, message: str) -> int:
        if self.stopping:
            print("devstack: stopped during start-up", file=sys.stderr)
            self.stop()
            return 0
        print(f"devstack: {message}", file=sys.stderr)
        self.stop()
        return 1

    def run(self) -> int:
        other = self.already_running()
        if other:
            print(f"devstack: ibkr-stack is already running here (pid {other}); stop it with Ctrl-C in its "
                  f"terminal or `kill {other}`, then run `make run` again.", file=sys.stderr)
            return 1
        key = registry_key(self.root, self.var) if service_exists("registry") else None
        given = {"registry": {"encryption_key": key}} if key else {}
        try:
            settings = load_stack_settings(self.root, [s for s in (*SERVICES, CONSOLE) if service_exists(s)], given)
        except SettingsError as exc:
            print(f"devstack: {exc.message}", file=sys.stderr)
            return 2
        self.var.mkdir(exist_ok=True)
        self.pid_file.write_text(str(os.getpid()))
        self.stack_json.unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            code = self._start_all(settings, key)
            if code or self.stopping:
                return code
            return self._watch()
        finally:
            self.stop()

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stop_requested.set()

    def _start(self, child: Child) -> Child:
        self.children.append(child)
        child.start()
        return child

    def _port(self, what: str, preferred: int) -> int:
        port = pick_port(preferred)
        if preferred and port != preferred:
            print(f"devstack: port {preferred} is taken; {what} listens on {port} instead", file=sys.stderr)
        return port

    def _start_all(self, settings: DevstackSettings, key: str | None = None) -> int:
        """Start every part with the configured values; only NATS (and cpsim, when used) are the devstack's."""
        env = dict(os.environ)
        if settings.use_cpsim and not explicitly_set(settings, "database_url") and set_aside_previous_run(self.var):
            print("devstack: the simulator starts fresh, and so do its database and event stream "
                  f"(the last run's are in {self.var / PREVIOUS}/)", file=sys.stderr)
        nats_port = self._port("NATS", settings.devstack_nats_port)
        nats = self._start(Child("nats", [str(Path(sys.executable).parent / "nats-server"), "-a", "127.0.0.1", "-p",
                                          str(nats_port), "-js", "-sd", str(self.var / "nats")], env, cwd=self.root))
        if not wait_port(nats_port, nats, 20, self.stop_requested):
            return self._fail("nats-server did not start")
        nats_url = f"nats://127.0.0.1:{nats_port}"
        database_url = (settings.database_url if explicitly_set(settings, "database_url")
                        else f"sqlite+aiosqlite:///{self.var / 'ibkr.db'}")
        from ibkr_common.db.migrate import upgrade

        upgrade(database_url)
        if self.stopping:
            return self._fail("stopped")
        gateway = self._gateway(settings, env)
        if gateway is None:
            return self._fail("cpsim did not start")
        host, port, ssl = gateway
        gateway_url = f"{'https' if ssl else 'http'}://{host}:{port}"
        service_env = {
            **env,
            "NATS_URL": nats_url,
            "DATABASE_URL": database_url,
            "IBKR_CONNECTION": settings.connection,
            "IBKR_GATEWAY_HOST": host,
            "IBKR_GATEWAY_PORT": str(port),
            "IBKR_GATEWAY_SSL": "true" if ssl else "false",
        }
        if settings.use_cpsim and not configured(self.root, "IBKR_OPTIONS_LEVELS"):
            service_env["IBKR_OPTIONS_LEVELS"] = CPSIM_OPTIONS_LEVELS  # the simulator's accounts, as it grants them
        http: dict[str, str] = {}
        console = self._start_console(settings, service_env)  # beside the services: it waits for them itself
        for service in SERVICES:
            if not service_exists(service):
                continue
            http_port = pick_port(0)  # the operators' endpoints: /healthz, /readyz, /metrics
            own_env = {**service_env, "IBKR_HTTP_HOST": "127.0.0.1", "IBKR_HTTP_PORT": str(http_port)}
            if service != "registry":
                own_env = without_keys(own_env)  # only the registry holds the encryption key
            elif key:
                own_env["IBKR_ENCRYPTION_KEY"] = key
            child = self._start(Child(service, python_module(f"ibkr_{service.replace('-', '_')}"), own_env,
                                      cwd=self.root))
            if not child.wait_for(f"{service} ready", READY_TIMEOUT_S, self.stop_requested):
                return self._fail(f"{service} did not become ready")
            http[service] = f"http://127.0.0.1:{http_port}"
        console_url = self._console_ready(console, http)
        if console_url is None:
            return self._fail("the console did not become ready")
        self.info = {
            "connection": settings.connection,
            "nats_url": nats_url,
            "gateway_url": gateway_url,
            "database_url": database_url,
            "pids": {c.name: c.pid for c in self.children},
            "http": http,
            "sim_gateways": self.sim_gateways,
            "console_url": console_url,
            "console_admin_file": str(self.var / "console-admin.json"),
        }
        tmp = self.stack_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info, indent=2))
        tmp.replace(self.stack_json)
        self._print_ready()
        return 0

    def _start_console(self, settings: DevstackSettings, service_env: dict[str, str]) -> tuple[Child, int, int] | None:
        """Start the console on IBKR_DEVSTACK_CONSOLE_PORT (or a free port), with its operators' port.

        Plain HTTP on 127.0.0.1, so its session cookie is not marked Secure here (a browser would not send
        it back over HTTP); anywhere else the console is served over HTTPS with Secure cookies."""
        if not service_exists(CONSOLE):
            return None
        port = self._port("the console", settings.devstack_console_port)
        http_port = pick_port(0)
        env = {**service_env, "IBKR_HTTP_HOST": "127.0.0.1", "IBKR_HTTP_PORT": str(http_port),
               "IBKR_CONSOLE_HOST": "127.0.0.1", "IBKR_CONSOLE_PORT": str(port),
               "IBKR_CONSOLE_ADMIN_FILE": str(self.var / "console-admin.json")}
        if not configured(self.root, "IBKR_CONSOLE_SECURE_COOKIES"):
            env["IBKR_CONSOLE_SECURE_COOKIES"] = "false"
        return self._start(Child(CONSOLE, python_module("ibkr_console"), env, cwd=self.root)), port, http_port

    def _console_ready(self, started: tuple[Child, int, int] | None, http: dict[str, str]) -> str | None:
        """The console's URL once it logged its ready line ("" when there is no console; None: it failed)."""
        if started is None:
            return ""
        child, port, http_port = started
        if not child.wait_for(f"{CONSOLE} ready", READY_TIMEOUT_S, self.stop_requested):
            return None
        http[CONSOLE] = f"http://127.0.0.1:{http_port}"
        return f"http://127.0.0.1:{port}"

    def _gateway(self, settings: DevstackSettings, env: dict[str, str]) -> tuple[str, int, bool] | None:
        """(host, port, ssl) of the gateway: the configured one, or a simulator started here."""
        if not settings.use_cpsim:
            return settings.gateway_host, settings.gateway_port, settings.gateway_ssl
        port = self._port("cpsim", settings.devstack_gateway_port)
        spare = pick_port(0)  # a second simulated login, for a connection registered at run time
        cpsim = self._start(Child("cpsim", python_module(
            "cpsim", "--gateway", f"paper:{port}", "--gateway", f"{SPARE_GATEWAY}:{spare}:{SPARE_ACCOUNT}",
            "--host", "127.0.0.1"), env, cwd=self.root))
        if not wait_port(port, cpsim, 30, self.stop_requested) or not wait_port(spare, cpsim, 30,
                                                                                self.stop_requested):
            return None
        self.sim_gateways = {SPARE_GATEWAY: f"https://localhost:{spare}"}
        return "localhost", port, True

    def _print_ready(self) -> None:
        names = ", ".join(c.name for c in self.children)
        http = "".join(f"  {'http' if n == 0 else '':<11}: {service} {url} (/healthz /readyz /metrics)\n"
                       for n, (service, url) in enumerate(self.info.get("http", {}).items()))
        print(
            "\nibkr-stack is up (Ctrl-C stops everything)\n"
            f"  connection : {self.info['connection']}\n"
            f"  NATS       : {mask_urls(self.info['nats_url'])}\n"
            f"  gateway    : {self.info['gateway_url']}\n"
            + "".join(f"  {'spare' if n == 0 else '':<11}: simulated gateway {name} at {url} ({SPARE_ACCOUNT}), for "
                      f"`ibkr connections create`\n" for n, (name, url) in enumerate(self.sim_gateways.items()))
            + f"  database   : {mask_urls(self.info['database_url'])}\n"
            f"  processes  : {names}\n"
            f"{http}"
            f"  stack file : {self.stack_json}\n"
            + (f"  console    : {self.info['console_url']} (first admin: {self.info['console_admin_file']})\n"
               if self.info.get("console_url") else ""),
            flush=True,
        )

    def _watch(self) -> int:
        while not self.stopping:
            for child in self.children:
                if not child.alive() and not self.stopping:
                    code = child.proc.returncode if child.proc else None
                    if child.restarts >= 5:
                        print(f"devstack: {child.name} keeps exiting (code {code}); stopping the stack",
                              file=sys.stderr)
                        return 1
                    child.restarts += 1
                    print(f"devstack: {child.name} exited with {code}; restart {child.restarts}/5", file=sys.stderr)
                    if self.stop_requested.wait(min(2 ** child.restarts, 10)):
                        break
                    child.start()
                    self.info.setdefault("pids", {})[child.name] = child.pid
                    self.stack_json.write_text(json.dumps(self.info, indent=2))
            self.stop_requested.wait(0.2)
        return 0

    def stop(self) -> None:
        self.stop_requested.set()
        self.stack_json.unlink(missing_ok=True)
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        try:
            if self.pid_file.exists() and self.pid_file.read_text().strip() == str(os.getpid()):
                self.pid_file.unlink()
        except OSError:
            pass
