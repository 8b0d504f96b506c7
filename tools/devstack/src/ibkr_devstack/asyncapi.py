"""`make asyncapi`: write each service's AsyncAPI document (FastStream's generator, completed with each request's
reply and each event's typed payload by `asyncapi_replies`) under docs/asyncapi/."""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ibkr_common.settings import CommonSettings
from ibkr_devstack.asyncapi_replies import complete
from ibkr_devstack.stack import SERVICES, service_exists

_ENV_PREFIXES = ("IBKR_", "VITE_", "NATS_URL", "DATABASE_URL")
#: The registry requires a key to build; the documents built from defaults never hold any setting's value.
DOCUMENTATION_KEY = "documentation-only-key-never-used-to-encrypt-anything"


@contextmanager
def clean_environment() -> Iterator[None]:
    """Generate from defaults only, whatever the caller's environment says."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
    for key in saved:
        del os.environ[key]
    os.environ["IBKR_ENCRYPTION_KEY"] = DOCUMENTATION_KEY
    cwd = os.getcwd()
    os.chdir("/")  # no .env file is read
    try:
        yield
    finally:
        os.chdir(cwd)
        del os.environ["IBKR_ENCRYPTION_KEY"]
        os.environ.update(saved)


def settings_class(module_name: str) -> type[CommonSettings]:
    """The service's settings class: the CommonSettings subclass defined in its settings module."""
    module = importlib.import_module(f"{module_name}.settings")
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if issubclass(obj, CommonSettings) and obj is not CommonSettings and obj.__module__ == module.__name__:
            return obj
    return CommonSettings


def document(service: str) -> dict[str, Any]:
    """The AsyncAPI document of one service, built from its defaults in a fresh interpreter.

    FastStream's generator keeps process-wide state (schema names seen before), so a document built
    after other apps in the same process can differ; a subprocess makes it depend on the code alone.
    """
    out = subprocess.run(
        [sys.executable, "-m", "ibkr_devstack.asyncapi", "--one", service],
        capture_output=True, text=True, check=True,
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def _build_document(service: str) -> dict[str, Any]:
    module_name = f"ibkr_{service.replace('-', '_')}"
    with clean_environment():
        settings = settings_class(module_name)()
        app = importlib.import_module(f"{module_name}.app").build_app(settings)
        spec = app.schema.to_specification().to_json()
    data: dict[str, Any] = complete(json.loads(spec), settings.connection)
    data.setdefault("info", {})["title"] = f"ibkr-stack {service}"
    return data


def generate(out_dir: Path) -> list[Path]:
    """Write docs/asyncapi/<service>.json for every service that exists."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for service in SERVICES:
        if not service_exists(service):
            continue
        path = out_dir / f"{service}.json"
        path.write_text(json.dumps(document(service), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def main() -> None:
    """Entry point of `make asyncapi` (and, with `--one SERVICE`, of one document on stdout)."""
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        logging.disable(logging.CRITICAL)
        print(json.dumps(_build_document(sys.argv[2])))
        return
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/asyncapi").resolve()
    for path in generate(out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
