"""`make run`'s engine: starts everything, writes .var/stack.json, refuses a second copy, stops clean."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nats
import pytest

from ibkr_devstack.processes import pid_alive

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _clean_env() -> dict[str, str]:
    """The caller's environment without any ibkr-stack variable, so only the test's configuration counts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBKR_", "VITE_", "NATS_URL", "DATABASE_URL"))}
    env["IBKR_DEVSTACK_GATEWAY_PORT"] = "0"
    env["IBKR_DEVSTACK_NATS_PORT"] = "0"
    env["IBKR_DEVSTACK_CONSOLE_PORT"] = "0"
    return env


def _start(root: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(root / "devstack.log", "wb") as log:  # a file, not a pipe: a full pipe would stall the stack
        return subprocess.Popen([sys.executable, "-m", "ibkr_devstack"], cwd=root, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _log(root: Path) -> str:
    return (root / "devstack.log").read_text(errors="replace")


def _wait_for_stack(root: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> dict:
    path = root / ".var" / "stack.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        if proc.poll() is not None:
            raise AssertionError(_log(root)[-3000:])
        time.sleep(0.2)
    raise AssertionError("no stack.json")


def _descendants(pid: int) -> dict[int, str]:
    """Every live process below `pid` (pid -> command line), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                try:
                    found[child] = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    found[child] = "?"
                frontier.append(child)
    return found


def _stop(proc: subprocess.Popen[bytes], signum: int = signal.SIGTERM, timeout: float = 60) -> int:
    if proc.poll() is None:
        proc.send_signal(signum)  # the devstack alone: it must stop its children itself
    return proc.wait(timeout=timeout)


def _gone(pids: list[int], timeout: float = 5) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if pid_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if pid_alive(p)]
    return alive


async def _synced_account(info: dict) -> dict:
    nc = await nats.connect(info["nats_url"])
    try:
        root = f"ibkr.{info['connection']}"
        await nc.request(f"{root}.sync.trigger", json.dumps({"account_id": "DU1234567"}).encode(), timeout=60)
        reply = await nc.request(f"{root}.account.get", json.dumps({"account_id": "DU1234567"}).encode(), timeout=10)
        return json.loads(reply.data)
    finally:
        await nc.close()


def _operators_endpoints_answer(info: dict) -> None:
    """Each service's /healthz, /readyz and /metrics, at the base URL stack.json lists under `http`."""
    services = set(info["pids"]) - {"nats", "cpsim"}
    assert set(info["http"]) == services
    for service, url in info["http"].items():
        health = httpx.get(f"{url}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["service"] == service, health.text
        ready = httpx.get(f"{url}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["status"] == "ok", ready.text
        metrics = httpx.get(f"{url}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert f'ibkr_service_info{{connection="{info["connection"]}",environment="paper",service="{service}"}} 1.0' \
            in metrics.text
    bridge = httpx.get(f"{info['http']['gateway-bridge']}/readyz", timeout=5).json()
    assert bridge["gateway"]["reachable"] is True, bridge  # the sync above went through it


def test_stack_starts_refuses_a_second_copy_and_stops_leaving_nothing(tmp_path):
    env = _clean_env()
    first = _start(tmp_path, env)
    try:
        info = _wait_for_stack(tmp_path, first)
        assert info["connection"] == "paper"
        assert info["database_url"].startswith("sqlite+aiosqlite:///")
        assert {"nats", "cpsim"} <= set(info["pids"])
        auth = httpx.post(f"{info['gateway_url']}/v1/api/iserver/auth/status", verify=False, json={}, timeout=5)
        assert auth.status_code == 200
        account = asyncio.run(_synced_account(info))
        assert account["ok"] and account["result"]["options_level"] == 2, account  # the simulator's grant
        _operators_endpoints_answer(info)
        second = subprocess.run([sys.executable, "-m", "ibkr_devstack"], cwd=tmp_path, env=env,
                                capture_output=True, timeout=30)
        assert second.returncode != 0
        assert b"already running" in second.stderr
    finally:
        _stop(first, signal.SIGINT)
    assert not (tmp_path / ".var" / "stack.json").exists()
    assert _gone(list(info["pids"].values())) == []


def test_taken_ports_move_to_free_ones_and_the_dotenv_file_wins(tmp_path):
    with socket.socket() as nats_squatter, socket.socket() as gateway_squatter:
        for squatter in (nats_squatter, gateway_squatter):
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
        taken_nats = nats_squatter.getsockname()[1]
        taken_gateway = gateway_squatter.getsockname()[1]
        database = tmp_path / "chosen.db"
        (tmp_path / ".env").write_text(
            f"IBKR_DEVSTACK_NATS_PORT={taken_nats}\n"
            f"VITE_IBKR_DEVSTACK_GATEWAY_PORT={taken_gateway}\n"
            "VITE_IBKR_CONNECTION=from-dotenv\n"
            f"VITE_DATABASE_URL=sqlite+aiosqlite:///{database}\n"
        )
        env = _clean_env()
        del env["IBKR_DEVSTACK_NATS_PORT"], env["IBKR_DEVSTACK_GATEWAY_PORT"]
        proc = _start(tmp_path, env)
        try:
            info = _wait_for_stack(tmp_path, proc)
            nats_port = int(info["nats_url"].rsplit(":", 1)[1])
            gateway_port = int(info["gateway_url"].rsplit(":", 1)[1])
            assert nats_port != taken_nats
            assert gateway_port != taken_gateway
            socket.create_connection(("127.0.0.1", nats_port), timeout=5).close()
            auth = httpx.post(f"{info['gateway_url']}/v1/api/iserver/auth/status", verify=False, json={}, timeout=5)
            assert auth.status_code == 200
            log = _log(tmp_path)
            assert f"port {taken_nats} is taken; NATS listens on {nats_port}" in log
            assert f"port {taken_gateway} is taken; cpsim listens on {gateway_port}" in log
            assert info["connection"] == "from-dotenv"
            assert info["database_url"] == f"sqlite+aiosqlite:///{database}"
            assert database.exists()
            services = set(info["pids"]) - {"nats", "cpsim"}
            assert services
            for service in services:  # each service runs with the values stack.json reports
                assert f"{service} ready (connection from-dotenv, nats {info['nats_url']})" in log
        finally:
            assert _stop(proc) == 0
        assert _gone(list(info["pids"].values())) == []


def test_sigterm_stops_everything_and_removes_the_stack_file(tmp_path):
    proc = _start(tmp_path, _clean_env())
    try:
        info = _wait_for_stack(tmp_path, proc)
        below = _descendants(proc.pid)
        assert set(info["pids"].values()) <= set(below)
    finally:
        code = _stop(proc, signal.SIGTERM)
    assert code == 0
    assert not (tmp_path / ".var" / "stack.json").exists()
    assert not (tmp_path / ".var" / "devstack.pid").exists()
    assert _gone(list(below)) == [], {p: below[p] for p in below if pid_alive(p)}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_start_up_stops_at_once_and_cleans_up(tmp_path, signum):
    proc = _start(tmp_path, _clean_env())
    try:
        deadline = time.monotonic() + 60
        below: dict[int, str] = {}
        while time.monotonic() < deadline and proc.poll() is None:  # until the first service is starting
            below = _descendants(proc.pid)
            if any(" -m ibkr_" in cmd and "ibkr_devstack" not in cmd for cmd in below.values()):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(_log(tmp_path)[-3000:])
        assert not (tmp_path / ".var" / "stack.json").exists()
        signalled = time.monotonic()
        code = _stop(proc, signum, timeout=30)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
    log = _log(tmp_path)
    assert code == 0, log[-3000:]
    assert "stopped during start-up" in log
    assert "ibkr-stack is up" not in log, "start-up went on after the signal"
    assert took < 15, f"took {took:.1f} s to stop"
    assert not (tmp_path / ".var" / "stack.json").exists()
    assert not (tmp_path / ".var" / "devstack.pid").exists()
    assert _gone(list(below)) == [], {p: below[p] for p in below if pid_alive(p)}


@pytest.mark.parametrize(
    ("line", "variable"),
    [
        ("VITE_IBKR_GATEWAY_PORT=abc", "VITE_IBKR_GATEWAY_PORT"),
        ("IBKR_USE_CPSIM=perhaps", "IBKR_USE_CPSIM"),
        ("VITE_IBKR_RATE_LIMIT_RPS=fast", "VITE_IBKR_RATE_LIMIT_RPS"),
    ],
)
def test_a_bad_value_in_dotenv_stops_make_run_naming_it(tmp_path, line, variable):
    (tmp_path / ".env").write_text(line + "\n")
    result = subprocess.run([sys.executable, "-m", "ibkr_devstack"], cwd=tmp_path, env=_clean_env(),
                            capture_output=True, timeout=60)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "invalid configuration" in stderr
    assert f"{variable} (in .env):" in stderr
    assert not (tmp_path / ".var" / "stack.json").exists()
