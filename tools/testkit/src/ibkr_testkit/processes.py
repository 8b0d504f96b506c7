"""Services as real subprocesses, for tests that need crashes, restarts and whole-stack flows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServiceProcess:
    """A running service; `lines` collects its log output."""

    module: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    lines: list[str] = field(default_factory=list)

    def wait_for_line(self, needle: str, timeout: float = 30.0) -> str:
        """Wait until a log line contains `needle`; raise with the log tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if needle in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = "".join(self.lines[-30:])
        raise RuntimeError(f"{self.module}: no line with {needle!r} (exit {self.proc.poll()}):\n{tail}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Stop gracefully (or with `sig`); return the exit code. The log file goes (`lines` stays)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log_path.unlink(missing_ok=True)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        self.stop(signal.SIGKILL, timeout=5)


def start_service(module: str, env: dict[str, str], *, ready: str = "ready", timeout: float = 60.0,
                  args: list[str] | None = None) -> ServiceProcess:
    """Run `python -m <module>` with `env` added, and wait for its ready line."""
    log_path = Path(tempfile.mkstemp(prefix=f"{module}-", suffix=".log")[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *(args or [])],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    handle = ServiceProcess(module=module, proc=proc, log_path=log_path)

    def pump() -> None:
        assert proc.stdout is not None
        with log_path.open("w") as sink:
            for raw in proc.stdout:
                line = raw.decode(errors="replace")
                handle.lines.append(line)
                sink.write(line)
                sink.flush()

    threading.Thread(target=pump, daemon=True).start()
    if ready:
        handle.wait_for_line(ready, timeout)
    return handle


def service_env(*, nats_url: str, database_url: str | None, conn: str, stream: str, stream_subjects: str,
                gateway_url: str | None = None, **extra: str) -> dict[str, str]:
    """Environment variables that point a service at the test's servers and names."""
    env = {
        "NATS_URL": nats_url,
        "IBKR_CONNECTION": conn,
        "IBKR_EVENTS_STREAM": stream,
        "IBKR_EVENTS_SUBJECTS": stream_subjects,
        "IBKR_LOG_LEVEL": "INFO",
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    if gateway_url:
        scheme, rest = gateway_url.split("://", 1)
        host, port = rest.rstrip("/").rsplit(":", 1)
        env.update({"IBKR_GATEWAY_HOST": host, "IBKR_GATEWAY_PORT": port,
                    "IBKR_GATEWAY_SSL": "true" if scheme == "https" else "false"})
    env.update({k.upper(): v for k, v in extra.items()})
    return env
