"""Start cpsim as a subprocess for tests: `with start_cpsim() as sim: httpx.get(sim.api_url + "/tickle")`.

Tests get the market open around the clock by default (`market_hours="always"`), so nothing depends on
the time of day a suite runs; a test about exchange hours asks for `market_hours="exchange"` (or posts
`/sim/market_hours`). Latency is on, as cpsim's default; `latency=False` for speed.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

READY = "cpsim listening on "
GATEWAY_LINE = re.compile(r"^cpsim gateway (?P<name>\S+) listening on (?P<url>\S+)$")


@dataclass(frozen=True)
class GatewayUrls:
    """One gateway of a cpsim process: `url`, `api_url` (+ /v1/api), `sim_url` (+ /sim), `port`."""

    name: str
    url: str

    @property
    def api_url(self) -> str:
        """Base URL of the Client Portal paths."""
        return self.url + "/v1/api"

    @property
    def sim_url(self) -> str:
        """Base URL of this gateway's control API."""
        return self.url + "/sim"

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self.url.rsplit(":", 1)[1])


@dataclass
class CpsimHandle:
    """A running simulator: `url` (scheme://host:port), `api_url` (`url` + /v1/api), `sim_url` (`url` + /sim)."""

    url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    #: every gateway of the process by name (`{"paper": ...}` for a single one)
    gateways: dict[str, GatewayUrls] = field(default_factory=dict)

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
    *,
    market_hours: str | None = "always",
    latency: bool = True,
    gateways: list[str] | None = None,
) -> CpsimHandle:
    """Run `python -m cpsim` (port None: a free one) and wait for its ready line.

    market_hours: "always" (the default for tests: the market is open whatever the time), "exchange"
    (cpsim's own default, as a paper account: 09:30-16:00 New York on weekdays) or None (cpsim's default).
    latency: False passes `--no-latency` (answers at once, for tests that ask for speed).
    gateways: several gateways in one process, as `NAME:PORT[:ACCOUNT,...]` (port 0: a free one), e.g.
    `["paper:0", "live:0:U1234567"]`; `handle.gateways[name]` has each one's URLs.
    """
    cmd = [sys.executable, "-m", "cpsim", "--host", host, "--seed", str(seed)]
    if gateways:
        for spec in gateways:
            cmd += ["--gateway", spec]
    else:
        cmd += ["--port", str(port or 0)]
    if not https:
        cmd.append("--http")
    if market_hours is not None:
        cmd += ["--market-hours", market_hours]
    if not latency:
        cmd.append("--no-latency")
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
    found: dict[str, GatewayUrls] = {}
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        named = GATEWAY_LINE.match(line.strip())
        if named:
            found[named["name"]] = GatewayUrls(named["name"], named["url"])
        if line.startswith(READY):
            url = line[len(READY) :].strip()
            return CpsimHandle(url, proc, output, found or {"paper": GatewayUrls("paper", url)})
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
