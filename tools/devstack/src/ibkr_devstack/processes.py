"""Child processes of the local stack: started together, prefixed logs, stopped together."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Children get SIGTERM if the devstack itself dies (Linux), so nothing is left behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    """One process of the stack, its log lines prefixed with its name."""

    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    lines: list[str] = field(default_factory=list)
    restarts: int = 0
    cwd: Path | None = None
    echo: bool = True
    log_path: Path | None = None
    user: str | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent, user=self.user, group=self.user, extra_groups=[] if self.user else None,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        width = 16
        sink = self.log_path.open("a") if self.log_path else None
        try:
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append(line)
                if len(self.lines) > 2000:
                    del self.lines[:1000]
                if sink is not None:
                    sink.write(line + "\n")
                    sink.flush()
                if self.echo:
                    sys.stdout.write(f"{self.name:<{width}}| {line}\n")
                    sys.stdout.flush()
        finally:
            if sink is not None:
                sink.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_for(self, needle: str, timeout: float, stop: threading.Event | None = None) -> bool:
        """True once a log line contains `needle`; False on exit, timeout, or as soon as `stop` is set."""
        stop = stop or threading.Event()
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline and not stop.is_set():
            while seen < len(self.lines):
                if needle in self.lines[seen]:
                    return True
                seen += 1
            if not self.alive():
                return False
            stop.wait(0.05)
        return False

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def python_module(module: str, *args: str) -> list[str]:
    """argv running `module` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
