"""One `make run` stack and one headless Chromium per test module (libs/client's stack helpers)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")


def _stack_helpers() -> Any:
    """libs/client/tests/stack_helpers.py, the one way the tests start a whole stack."""
    name = "ibkr_client_stack_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "libs" / "client" / "tests" / "stack_helpers.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


helpers = _stack_helpers()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # the stack starts its parts one after another: minutes on a loaded machine
    running = helpers.start_stack(tmp_path_factory.mktemp("console-stack"), timeout=300)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def admin(stack: Any) -> dict[str, str]:
    """The first admin `make run` created (its generated password, from the 0600 file)."""
    path = Path(stack.info["console_admin_file"])
    assert path.stat().st_mode & 0o777 == 0o600
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless (Playwright's own browser download cannot work here)."""
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()
