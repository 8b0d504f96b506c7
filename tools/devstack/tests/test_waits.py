"""The devstack's waits give up as soon as a stop is requested (Ctrl-C / SIGTERM during start-up)."""

import socket
import sys
import threading
import time

import pytest

from ibkr_devstack.processes import Child
from ibkr_devstack.stack import pick_port, wait_port


@pytest.fixture
def sleeper():
    child = Child("sleeper", [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"], {})
    child.start()
    try:
        yield child
    finally:
        child.stop(timeout=5)


def _set_soon(event: threading.Event, after: float = 0.2) -> None:
    threading.Timer(after, event.set).start()


def test_wait_for_a_log_line_returns_when_stop_is_set(sleeper):
    stop = threading.Event()
    _set_soon(stop)
    started = time.monotonic()
    assert sleeper.wait_for("never printed", timeout=30, stop=stop) is False
    assert time.monotonic() - started < 2
    assert sleeper.alive()


def test_wait_for_still_finds_the_line(sleeper):
    assert sleeper.wait_for("started", timeout=30, stop=threading.Event()) is True


def test_wait_port_returns_when_stop_is_set(sleeper):
    stop = threading.Event()
    _set_soon(stop)
    started = time.monotonic()
    assert wait_port(pick_port(0), sleeper, timeout=30, stop=stop) is False
    assert time.monotonic() - started < 2


def test_a_taken_port_is_not_picked():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert pick_port(port) != port
    free = pick_port(0)
    assert pick_port(free) == free
