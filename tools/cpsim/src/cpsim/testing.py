"""Start cpsim as a subprocess for tests: `with start_cpsim() as sim: httpx.get(sim.api_url + "/tickle")`."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

READY = "cpsim listening on "


@dataclass
class CpsimHandle:
    """A running simulator: `url` (scheme://host:port), `api_url` (`url` + /v1/api), `sim_url` (`url` + /sim)."""

    url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        """Base URL of the Client Portal paths."""
        return self.url + "/v1/api"

    @property
    def sim_url(self) -> str:
        """Base URL of the control API."""
        return self.url + "/sim"

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in `timeout` seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def __enter__(self) -> CpsimHandle:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def start_cpsim(
    port: int | None = None,
    https: bool = True,
    seed: int = 42,
    host: str = "127.0.0.1",
    extra_args: list[str] | None = None,
    timeout: float = 30.0,
    env: dict[str, Any] | None = None,
) -> CpsimHandle:
    """Run `python -m cpsim` (port None: a free one) and wait for its ready line."""
    cmd = [sys.executable, "-m", "cpsim", "--port", str(port or 0), "--host", host, "--seed", str(seed)]
    if not https:
        cmd.append("--http")
    cmd += extra_args or []
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True, name="cpsim-output").start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        if line.startswith(READY):
            return CpsimHandle(line[len(READY) :].strip(), proc, output)
    proc.kill()
    raise RuntimeError("cpsim did not start: " + "".join(output)[-2000:])


ACCOUNT = "DU1234567"
CONIDS: dict[str, int] = {
    "AAPL": 265598,
    "SPY": 756733,
    "QQQ": 320227571,
    "TSLA": 76792991,
    "MSFT": 272093,
    "IWM": 9579970,
}


def place_confirmed(client: Any, order: dict[str, Any], account: str = ACCOUNT, rounds: int = 10) -> tuple[int, Any]:
    """Place one order through an httpx-like client on the simulator's root URL, confirming every question."""
    r = client.post(f"/v1/api/iserver/account/{account}/orders", json={"orders": [order]})
    body = r.json()
    for _ in range(rounds):
        if r.status_code == 200 and isinstance(body, list) and body and "id" in body[0] and "order_id" not in body[0]:
            r = client.post(f"/v1/api/iserver/reply/{body[0]['id']}", json={"confirmed": True})
            body = r.json()
            continue
        break
    return r.status_code, body
