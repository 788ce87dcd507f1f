"""Importing a handler, as Lambda does at a cold start, reads nothing but code and builds no
domain model: what is not needed by every invocation waits for its first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.resources import LAMBDA_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[3]
LAYER = ROOT / "layers" / "mailproxy" / "python"
HANDLERS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "handler.py").exists())

# Runs in a fresh interpreter: every file opened while `import handler` runs (code aside),
# and every pydantic model of the shared package whose schema is built by then.
PROBE = """
import json, sys
opened = []
def watch(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        path = str(args[0])
        if not path.endswith((".py", ".pyc", ".so", ".pth")):
            opened.append(path)
sys.addaudithook(watch)
import handler
from pydantic import BaseModel
built = sorted(
    f"{module.__name__}.{name}"
    for module in list(sys.modules.values())
    if getattr(module, "__name__", "").startswith("mailproxy.")
    for name, value in vars(module).items()
    if isinstance(value, type) and issubclass(value, BaseModel) and value.__pydantic_complete__
)
print(json.dumps({"opened": opened, "built": built}))
"""


def import_handler(name: str) -> dict[str, list[str]]:
    env = os.environ | LAMBDA_ENVIRONMENT | {"PYTHONPATH": f"{ROOT / 'functions' / name}:{LAYER}"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    answer: dict[str, list[str]] = json.loads(result.stdout.splitlines()[-1])
    return answer


def test_every_function_is_probed() -> None:
    # Given the functions folder / Then each Lambda of the stack is here
    assert HANDLERS == ["api", "bouncer", "reporter", "scheduler", "sender"]


@pytest.mark.parametrize("name", HANDLERS)
def test_importing_a_handler_reads_only_code(name: str) -> None:
    # Given a fresh interpreter with the Lambdas' environment / When it imports the handler
    probe = import_handler(name)
    # Then no file but code was opened (no configuration, no package metadata)
    assert probe["opened"] == []


@pytest.mark.parametrize("name", HANDLERS)
def test_importing_a_handler_builds_no_domain_model(name: str) -> None:
    # Given a fresh interpreter with the Lambdas' environment / When it imports the handler
    probe = import_handler(name)
    # Then no model's validator is built yet: each is built when first used
    assert probe["built"] == []
