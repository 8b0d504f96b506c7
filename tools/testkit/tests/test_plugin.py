"""The test plugin: per-worker names, and no silent skip under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ibkr_testkit.plugin import RunNames, new_run_id

SKIPPING = '''
import pytest

def test_skipped():
    pytest.skip("no server here")

@pytest.mark.live
def test_live():
    pytest.skip("no real gateway")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
'''


def _run(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (folder / "test_skipping.py").write_text(SKIPPING)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "ibkr_testkit.plugin", "-p", "no:cacheprovider", "-q", "-rA",
         "-c", os.devnull, "-o", "asyncio_default_fixture_loop_scope=function", "--rootdir", str(folder), str(folder)],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120, cwd=folder,
    )


def test_under_ci_a_skip_fails_except_a_live_test_or_an_expected_failure(tmp_path: Path) -> None:
    result = _run(tmp_path, CI="true")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 skipped, 1 xfailed" in result.stdout
    assert "skipped under CI=true, where nothing may skip: no server here" in result.stdout


def test_outside_ci_a_skip_is_a_skip(tmp_path: Path) -> None:
    result = _run(tmp_path, CI="")
    assert result.returncode == 0, result.stdout
    assert "2 skipped, 1 xfailed" in result.stdout


@pytest.mark.parametrize(("worker", "suffix"), [("gw0", "w0"), ("gw12", "w12"), ("main", "")])
def test_run_names_carry_the_xdist_worker(monkeypatch: pytest.MonkeyPatch, worker: str, suffix: str) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    run_id = new_run_id()
    assert len(run_id) == 8 + len(suffix) and run_id.endswith(suffix)
    names = RunNames(run_id)
    assert names.conn.endswith(suffix) and names.database.endswith(suffix)
    assert names.stream.endswith(suffix.upper()) and names.app_role.endswith(suffix)
    assert new_run_id() != run_id


def test_cpsim_gateways_are_two_gateways_of_one_process(cpsim_gateways: dict[str, str]) -> None:
    import httpx

    assert set(cpsim_gateways) == {"paper", "live"}
    names = {}
    for name, url in cpsim_gateways.items():
        httpx.post(f"{url}/sim/reset", verify=False, timeout=10).raise_for_status()
        state = httpx.get(f"{url}/sim/state", verify=False, timeout=10).json()
        names[name] = (state["gateway"]["name"], list(state["accounts"]), state["market_hours"]["mode"])
    assert names == {"paper": ("paper", ["DU1234567"], "always"), "live": ("live", ["U1234567"], "always")}


def test_cpsim_no_latency_turns_the_model_off_for_one_test(cpsim_no_latency: str) -> None:
    import httpx

    assert httpx.get(f"{cpsim_no_latency}/sim/latency", verify=False, timeout=10).json()["enabled"] is False
