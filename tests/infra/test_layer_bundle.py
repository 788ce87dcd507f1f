"""The dependencies layer's local bundling step (no Docker, no synth needed)."""

from __future__ import annotations

import platform
import tomllib
from pathlib import Path

from packaging.utils import canonicalize_name

from infra import layer_bundle


def lock_versions() -> dict[str, str]:
    with layer_bundle.LOCK.open("rb") as handle:
        lock = tomllib.load(handle)
    return {canonicalize_name(p["name"]): p["version"] for p in lock["package"]}


def test_layer_pins_are_the_lock_versions_of_the_runtime_dependencies() -> None:
    # Read apart from uv (tomllib), so a wrong export flag or parse cannot agree with itself.
    versions = lock_versions()
    pinned = {
        canonicalize_name(n): v
        for n, v in layer_bundle.pins(layer_bundle.runtime_requirements()).items()
    }
    assert pinned == {name: versions[name] for name in pinned}
    with (layer_bundle.ROOT / "pyproject.toml").open("rb") as handle:
        declared = tomllib.load(handle)["project"]["dependencies"]
    direct = {canonicalize_name(d.split(">")[0].split("<")[0].split("=")[0]) for d in declared}
    assert direct <= set(pinned)
    # Only the runtime: nothing of the local, infra or test extras rides along to Lambda.
    assert not {"moto", "aws-cdk-lib", "pytest", "pip", "mailproxy"} & set(pinned)


def test_every_pin_carries_hashes() -> None:
    for requirement in layer_bundle.runtime_requirements():
        assert "==" in requirement.split()[0]
        assert " --hash=sha256:" in requirement


def test_markers_are_judged_for_lambda_not_for_this_machine() -> None:
    exported = (
        "a==1.0 ; python_full_version < '3.12' \\\n    --hash=sha256:aa\n"
        "b==2.0 ; sys_platform == 'win32'\n"
        "c==3.0 ; platform_machine == 'aarch64' and python_full_version >= '3.12' \\\n"
        "    --hash=sha256:cc \\\n    --hash=sha256:cd\n"
        "d==4.0\n"
    )
    assert layer_bundle.runtime_requirements(exported) == [
        "c==3.0 --hash=sha256:cc --hash=sha256:cd",
        "d==4.0",
    ]


def test_bundle_key_follows_requirements_not_their_order() -> None:
    key = layer_bundle.bundle_key(["a>=1", "b"])
    assert key == layer_bundle.bundle_key(["b", "a>=1"])
    assert key != layer_bundle.bundle_key(["a>=2", "b"])


def test_a_bundle_for_this_machine_is_kept_apart_from_the_lambda_one() -> None:
    requirements = ["a==1.0", "b==2.0"]
    lambda_key = layer_bundle.bundle_key(requirements)
    assert lambda_key == layer_bundle.bundle_key(requirements, layer_bundle.LAMBDA)
    assert lambda_key != layer_bundle.bundle_key(requirements, layer_bundle.THIS_MACHINE)
    # Markers judged for this interpreter: a pin only this machine needs is kept.
    here_only = f"a==1.0 ; python_full_version == '{platform.python_version()}'\n"
    assert layer_bundle.runtime_requirements(here_only, environment=None) == ["a==1.0"]
    assert layer_bundle.runtime_requirements(here_only) == []


def test_a_built_bundle_is_reused_without_pip(tmp_path: Path, monkeypatch) -> None:
    requirements = layer_bundle.runtime_requirements()
    key = layer_bundle.bundle_key(requirements)
    (tmp_path / f"deps-{key}" / "python").mkdir(parents=True)
    monkeypatch.setattr(layer_bundle, "runtime_requirements", lambda **_: requirements)

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran for a cached bundle")

    monkeypatch.setattr(layer_bundle.subprocess, "run", no_pip)
    assert layer_bundle.dependencies_layer_dir(tmp_path) == tmp_path / f"deps-{key}"
