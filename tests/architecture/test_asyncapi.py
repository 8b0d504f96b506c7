"""The committed AsyncAPI documents match what the code generates (`make asyncapi` refreshes them)."""

import json
from pathlib import Path

import pytest

from ibkr_devstack.asyncapi import document
from ibkr_devstack.stack import SERVICES, service_exists

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"
EXISTING = [s for s in SERVICES if service_exists(s)]


@pytest.mark.parametrize("service", EXISTING)
def test_committed_asyncapi_document_matches_the_code(service):
    path = DOCS / f"{service}.json"
    assert path.exists(), f"{path} missing: run make asyncapi"
    assert json.loads(path.read_text()) == document(service), f"{path} is stale: run make asyncapi"


def test_every_existing_service_has_a_document():
    assert sorted(p.stem for p in DOCS.glob("*.json")) == sorted(EXISTING)


@pytest.mark.parametrize("service", EXISTING)
def test_every_command_subject_documents_its_answer_time(service):
    channels = json.loads((DOCS / f"{service}.json").read_text())["channels"]
    commands = {name: c for name, c in channels.items() if ":Event" not in name and "invalidate-on" not in name}
    assert commands, service
    silent = [name for name, c in commands.items()
              if not any(w in (c.get("description") or "") for w in ("answers within", "Answers within",
                                                                      "Answers at once", "No fixed answer time"))]
    assert not silent, f"{service}: no documented answer time on {silent}"
