"""`make synth` as a user runs it: the pinned CDK CLI from package.json, offline, with no AWS
credentials at all."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="Node.js/npm is not installed")


def test_make_synth_works_offline_without_aws_credentials(tmp_path: Path) -> None:
    # Given a machine with no AWS credentials or profile at all
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and not key.startswith("CDK_DEFAULT")
    }
    env |= {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": "/nonexistent",
        "NPM_CONFIG_CACHE": str(Path.home() / ".npm"),
    }
    # When `make synth` runs (it installs the pinned CLI with npm ci on first use)
    result = subprocess.run(
        ["make", "synth"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    # Then it succeeds and leaves the stack's template in cdk.out/
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    template = ROOT / "cdk.out" / "MailProxy.template.json"
    assert template.exists()
    assert '"AWS::Lambda::EventSourceMapping"' in template.read_text()
    # and the CLI is the pinned aws-cdk 2
    version = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "cdk"), "--version"],
        cwd=ROOT,
        env=env | {"CDK_DISABLE_VERSION_CHECK": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert version.stdout.startswith("2."), version.stdout + version.stderr
