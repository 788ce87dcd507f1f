"""The dependencies layer's local bundling step (no Docker, no synth needed)."""

from __future__ import annotations

from pathlib import Path

from infra import layer_bundle


def test_requirements_come_from_pyproject() -> None:
    requirements = layer_bundle.runtime_requirements()
    names = {r.split(">")[0].split("<")[0].split("=")[0].strip() for r in requirements}
    assert {"boto3", "aws-lambda-powertools", "pydantic", "pynamodb", "requests"} <= names


def test_bundle_key_follows_requirements_not_their_order() -> None:
    key = layer_bundle.bundle_key(["a>=1", "b"])
    assert key == layer_bundle.bundle_key(["b", "a>=1"])
    assert key != layer_bundle.bundle_key(["a>=2", "b"])


def test_a_built_bundle_is_reused_without_pip(tmp_path: Path, monkeypatch) -> None:
    key = layer_bundle.bundle_key(layer_bundle.runtime_requirements())
    (tmp_path / f"deps-{key}" / "python").mkdir(parents=True)

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran for a cached bundle")

    monkeypatch.setattr(layer_bundle.subprocess, "run", no_pip)
    assert layer_bundle.dependencies_layer_dir(tmp_path) == tmp_path / f"deps-{key}"
