"""The third-party dependencies layer, built locally without Docker.

The versions come from uv.lock, the one lock file that `make run` and `make test` install
from too, so Lambda runs what the tests ran. `uv export` lists the runtime dependencies of the
project (no extras) pinned with their hashes; their markers are evaluated for Lambda (Linux
arm64, CPython 3.12), not for the machine that builds; pip then installs exactly that list
(`--no-deps`: the export is already the full closure, and pip would judge markers by the build
machine) as arm64 wheels into `<cache>/<hash>/python`, the folder layout Lambda expects in a
layer (`/opt/python`). The folder is keyed by a hash of the pins and the target platform, so
a second synth (and every test after the first) reuses it without touching the network.
Several processes may build at once: each builds in its own temporary folder and the first
rename wins.

The same pins can be installed for this machine instead (`THIS_MACHINE`): the tests that run
the synthesized Lambdas here use them in place of the arm64 layer, whose compiled wheels
(pydantic-core) would not load on another platform.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "uv.lock"
CACHE_ENV = "MAILPROXY_LAYER_CACHE"
DEFAULT_CACHE = ROOT / "cdk.out" / ".layer-cache"
# The Makefile points this at the uv it bootstrapped (.venv-tools), the same uv that locked.
UV_ENV = "MAILPROXY_UV"

PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.12"
# What a marker in the lock sees on Lambda's python3.12 arm64 runtime.
LAMBDA_ENVIRONMENT = {
    "implementation_name": "cpython",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": f"{PYTHON_VERSION}.0",
    "python_version": PYTHON_VERSION,
    "sys_platform": "linux",
}


@dataclass(frozen=True)
class Target:
    """Where the dependencies are to run: what tells builds apart (part of the cache key),
    pip's options to fetch wheels for it, and the environment its markers are judged in
    (None: this interpreter's own)."""

    key: tuple[str, ...]
    pip_options: tuple[str, ...] = ()
    environment: dict[str, str] | None = field(default=None, hash=False)


LAMBDA = Target(
    key=(PLATFORM, PYTHON_VERSION),
    pip_options=(
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
    ),
    environment=LAMBDA_ENVIRONMENT,
)
# This interpreter on this machine (pip's defaults): e.g. linux-x86_64, cpython-311.
THIS_MACHINE = Target(key=(sysconfig.get_platform(), sys.implementation.cache_tag))


class BundlingError(RuntimeError):
    """pip could not install the dependencies for the Lambda platform."""


def uv_binary() -> str:
    explicit = os.environ.get(UV_ENV)
    if explicit:
        return explicit
    bootstrapped = ROOT / ".venv-tools" / "bin" / "uv"
    if bootstrapped.exists():
        return str(bootstrapped)
    found = shutil.which("uv")
    if found:
        return found
    raise BundlingError(f"uv not found: run a make target first, or set {UV_ENV}")


def export_lock() -> str:
    """uv.lock's runtime dependencies as requirements.txt text, with hashes and markers."""
    command = [
        uv_binary(),
        "export",
        "--frozen",  # the lock as committed; `make test` checks it matches pyproject.toml
        "--no-dev",
        "--no-emit-project",
        "--no-header",
        # The CDK CLI sets FORCE_COLOR for the app: escape codes would land in the pins.
        "--color",
        "never",
        "--format",
        "requirements.txt",
        "--directory",
        str(ROOT),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BundlingError(f"uv export failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def runtime_requirements(
    exported: str | None = None, environment: dict[str, str] | None = LAMBDA_ENVIRONMENT
) -> list[str]:
    """One line per package Lambda needs: `name==version --hash=... ...`, markers applied
    (judged for Lambda; with `environment=None`, for this interpreter)."""
    text = export_lock() if exported is None else exported
    requirements = []
    for raw in text.replace("\\\n", " ").splitlines():
        line = " ".join(raw.split())
        if not line or line.startswith("#"):
            continue
        spec, _, hashes = line.partition(" --hash")
        pin, _, marker = spec.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        requirements.append(f"{pin.strip()} --hash{hashes}" if hashes else pin.strip())
    return requirements


def pins(requirements: list[str]) -> dict[str, str]:
    """`{name: version}` of requirement lines as runtime_requirements gives them."""
    pinned = {}
    for requirement in requirements:
        name, _, version = requirement.split()[0].partition("==")
        pinned[name] = version
    return pinned


def bundle_key(requirements: list[str], target: Target = LAMBDA) -> str:
    spec = "\n".join([*target.key, *sorted(requirements)])
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def dependencies_layer_dir(cache: Path | None = None, platform: Target = LAMBDA) -> Path:
    """The folder to zip as the dependencies layer (it holds `python/`), built if missing;
    for Lambda unless another `platform` is asked for."""
    requirements = runtime_requirements(environment=platform.environment)
    cache = cache or Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
    target = cache / f"deps-{bundle_key(requirements, platform)}"
    if (target / "python").is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="deps-build-", dir=cache))
    try:
        # Outside `python/`, and deleted before the rename: it is not part of the layer.
        listed = work / "requirements.txt"
        listed.write_text("\n".join(requirements) + "\n")
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--no-deps",
            "--require-hashes",
            *platform.pip_options,
            "--only-binary=:all:",
            "--target",
            str(work / "python"),
            "--requirement",
            str(listed),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise BundlingError(f"pip failed ({done.returncode}):\n{done.stderr[-4000:]}")
        listed.unlink()
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
