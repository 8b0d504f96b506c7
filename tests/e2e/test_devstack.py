"""`make run`'s engine: starts everything, writes .var/stack.json, refuses a second copy, stops clean."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ibkr_devstack.processes import pid_alive

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _start(root: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ibkr_devstack"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_stack(root: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> dict:
    path = root / ".var" / "stack.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode()[-2000:])
        time.sleep(0.2)
    raise AssertionError("no stack.json")


def test_stack_starts_refuses_a_second_copy_and_stops_leaving_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBKR_", "NATS_URL", "DATABASE_URL"))}
    env["IBKR_DEVSTACK_GATEWAY_PORT"] = "0"
    env["IBKR_DEVSTACK_NATS_PORT"] = "0"
    first = _start(tmp_path, env)
    try:
        info = _wait_for_stack(tmp_path, first)
        assert info["connection"] == "paper"
        assert info["database_url"].startswith("sqlite+aiosqlite:///")
        assert {"nats", "cpsim"} <= set(info["pids"])
        auth = httpx.post(f"{info['gateway_url']}/v1/api/iserver/auth/status", verify=False, json={}, timeout=5)
        assert auth.status_code == 200
        second = subprocess.run([sys.executable, "-m", "ibkr_devstack"], cwd=tmp_path, env=env,
                                capture_output=True, timeout=30)
        assert second.returncode != 0
        assert b"already running" in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    time.sleep(0.5)
    assert not (tmp_path / ".var" / "stack.json").exists()
    assert [name for name, pid in info["pids"].items() if pid_alive(pid)] == []
