"""The CDK app synthesized once per test session (cdk-nag included), shared by tests/infra."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii's Node.js runtime warns loudly about Node 20 at every start; it is what CI has.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "20")

STACK_NAME = "MailProxy"
# An allow-listed attachment bucket, so the sender's extra read grant is synthesized too.
ATTACHMENT_BUCKET = "tenant-attachments-example"


@dataclass
class Synthesized:
    outdir: Path
    template: dict[str, Any]
    # The error of app.synth(), cdk-nag's validation failure among them; None when clean.
    error: str | None
    seconds: float

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.template["Resources"].items() if r["Type"] == kind}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """One synth per test run: under pytest-xdist the first worker to ask synthesizes, into a
    folder of this run that every worker sees, and the others read what it wrote."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _synthesize(tmp_path_factory.mktemp("cdk.out"))
    shared = tmp_path_factory.getbasetemp().parent  # this run's, common to its workers
    outdir = shared / "cdk.out"
    with (shared / "cdk.out.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "cdk.out.json"
        if not done.exists():
            synthesized = _synthesize(outdir)
            outcome = {"error": synthesized.error, "seconds": synthesized.seconds}
            done.write_text(json.dumps(outcome))
            return synthesized
    outcome = json.loads(done.read_text())
    return _synthesized(outdir, outcome["error"], outcome["seconds"])


def _synthesize(outdir: Path) -> Synthesized:
    import time

    from infra.app import build_app

    outdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    app = build_app(
        context={"stackName": STACK_NAME, "s3AttachmentBuckets": ATTACHMENT_BUCKET},
        outdir=str(outdir),
    )
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # jsii raises the validation report as a RuntimeError
        error = str(exc)
    return _synthesized(outdir, error, time.monotonic() - started)


def _synthesized(outdir: Path, error: str | None, seconds: float) -> Synthesized:
    template_file = outdir / f"{STACK_NAME}.template.json"
    if not template_file.exists():
        pytest.fail(f"synth wrote no template: {error}")
    template = json.loads(template_file.read_text())
    return Synthesized(outdir, template, error, seconds)
