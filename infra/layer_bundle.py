"""The third-party dependencies layer, built locally without Docker.

pip installs the project's runtime dependencies (read from pyproject.toml, one source of
truth) as Linux arm64 wheels for Python 3.12 into `<cache>/<hash>/python`, the folder layout
Lambda expects in a layer (`/opt/python`). The folder is keyed by a hash of the requirements
and the target platform, so a second synth (and every test after the first) reuses it
without touching the network. Several processes may build at once: each builds in its own
temporary folder and the first rename wins.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
CACHE_ENV = "MAILPROXY_LAYER_CACHE"
DEFAULT_CACHE = ROOT / "cdk.out" / ".layer-cache"

PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.12"


class BundlingError(RuntimeError):
    """pip could not install the dependencies for the Lambda platform."""


def runtime_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    with pyproject.open("rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def bundle_key(requirements: list[str]) -> str:
    spec = "\n".join([PLATFORM, PYTHON_VERSION, *sorted(requirements)])
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def dependencies_layer_dir(cache: Path | None = None) -> Path:
    """The folder to zip as the dependencies layer (it holds `python/`), built if missing."""
    requirements = runtime_requirements()
    cache = cache or Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
    target = cache / f"deps-{bundle_key(requirements)}"
    if (target / "python").is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="deps-build-", dir=cache))
    try:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--platform",
            PLATFORM,
            "--implementation",
            "cp",
            "--python-version",
            PYTHON_VERSION,
            "--only-binary=:all:",
            "--target",
            str(work / "python"),
            *requirements,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise BundlingError(f"pip failed ({done.returncode}):\n{done.stderr[-4000:]}")
        for junk in (work / "python").glob("**/__pycache__"):
            shutil.rmtree(junk, ignore_errors=True)
        try:
            work.rename(target)
        except OSError:
            if not (target / "python").is_dir():  # not a concurrent build that won the race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
