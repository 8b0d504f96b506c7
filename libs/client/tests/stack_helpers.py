"""`make run`'s stack for the client's tests: started in a folder of its own, shared by a test module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ACCOUNT = "DU1234567"
#: AAPL's quote while the tests run: the random walk is off, so a limit below the ask rests and MKT fills.
AAPL = {"bid": "100.00", "ask": "100.10", "last": "100.05"}
IBKR = Path(sys.executable).parent / "ibkr"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any ibkr-stack variable, so only the test's configuration counts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBKR_", "VITE_", "NATS_URL", "DATABASE_URL"))}
    env.update({"IBKR_DEVSTACK_GATEWAY_PORT": "0", "IBKR_DEVSTACK_NATS_PORT": "0", "IBKR_DEVSTACK_CONSOLE_PORT": "0",
                "NO_COLOR": "1",
                "COLUMNS": "200"})
    env.update(extra)
    return env


@dataclass
class Stack:
    """A running `python -m ibkr_devstack` and what its stack file says."""

    root: Path
    proc: subprocess.Popen[bytes]
    info: dict[str, Any]

    @property
    def nats_url(self) -> str:
        return str(self.info["nats_url"])

    @property
    def gateway_url(self) -> str:
        return str(self.info["gateway_url"])

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        """A call to cpsim's control API (`/sim/...`)."""
        response = httpx.request(method, f"{self.gateway_url}/sim/{path}", json=body, verify=False, timeout=10)
        response.raise_for_status()
        return response.json()

    def ibkr(self, *args: str, cwd: Path | None = None, timeout: float = 90,
             **env: str) -> subprocess.CompletedProcess[str]:
        """Run the `ibkr` command in the stack's folder (it finds `.var/stack.json` there)."""
        return subprocess.run([str(IBKR), *args], cwd=cwd or self.root, env=clean_env(**env), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def log(self) -> str:
        return (self.root / "devstack.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def start_stack(root: Path, timeout: float = 120) -> Stack:
    """Start the stack in `root` and wait for its `.var/stack.json`; open the market, freeze AAPL's price.

    `make run`'s cpsim keeps exchange hours, as a paper account does; these tests follow orders to their
    fills, so the market is opened around the clock, whatever the time of day the suite runs.
    """
    with open(root / "devstack.log", "wb") as log:  # a file, not a pipe: a full pipe would stall the stack
        proc = subprocess.Popen([sys.executable, "-m", "ibkr_devstack"], cwd=root, env=clean_env(), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    path = root / ".var" / "stack.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stack = Stack(root, proc, {})
            stack.stop()
            raise AssertionError("the stack did not start:\n" + stack.log()[-3000:])
        time.sleep(0.2)
    stack = Stack(root, proc, json.loads(path.read_text()))
    stack.sim("POST", "market_hours", {"mode": "always"})
    stack.sim("POST", "market", {"walk": False})
    stack.sim("POST", "prices", {"AAPL": AAPL})
    return stack


def wait_until(check: Any, timeout: float = 20.0, interval: float = 0.2) -> Any:
    """Poll `check()` until it returns something truthy; its last value on timeout raises."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {value!r}")
        time.sleep(interval)
