"""The synthesized Lambdas as Lambda would run them, from `cdk.out` alone, on this machine.

- `unpack`: a function's code asset and its layers zipped and unzipped into a clean folder,
  as `cdk deploy` publishes them and Lambda extracts them (`task/`, and `opt/` holding every
  layer in order). A layer of installed distributions (the third-party one, built for Linux
  arm64) cannot load here: the same pins installed for this machine stand in for it, after a
  check that they hold the same files (the same distributions at the same versions, nothing
  missing), compiled extensions but for their platform tags.
- `resolve`: a template value with its `Ref`s and `Fn::GetAtt`s replaced by what a deployment
  made of them (a refusal for anything it was not told about).
- `FunctionProcess`: the function in its own `python -I -S` process, its sys.path only those
  folders (see lambda_bootstrap.py), invoked over a pipe, warm between invocations.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from tests.support import lambda_bootstrap
from tests.support.lambda_bootstrap import TIMEOUT_ENV

BOOTSTRAP = Path(lambda_bootstrap.__file__)


@dataclass(frozen=True)
class Unpacked:
    """One function's folders, in sys.path order, and what Lambda would know of it."""

    name: str
    folders: list[Path]
    environment: Mapping[str, Any]  # the template's Environment.Variables, unresolved
    lambda_variables: dict[str, str]  # what Lambda itself sets: _HANDLER, AWS_LAMBDA_*


def distributions(folder: Path) -> dict[str, str]:
    """`{name: version}` of the distributions installed in a folder."""
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions(path=[str(folder)])
    }


def installed_files(folder: Path) -> set[str]:
    """The files of a folder of installed distributions, by relative path, with extension
    modules' platform tags left out (`x.cpython-312-aarch64-linux-gnu.so` is `x.so`)."""
    return {
        re.sub(r"\.cpython-[^.]+\.so$", ".so", str(path.relative_to(folder)))
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def _asset_folder(outdir: Path, content: Mapping[str, Any]) -> Path:
    """The staged asset a Code / Content property points at (by its S3 key, as published)."""
    manifest = json.loads(next(outdir.glob("*.assets.json")).read_text())
    asset_hash = str(content["S3Key"]).removesuffix(".zip")
    source = manifest["files"][asset_hash]["source"]
    assert source["packaging"] == "zip", source
    return outdir / source["path"]


def _zip_and_extract(folder: Path, destination: Path, scratch: Path) -> None:
    archive = shutil.make_archive(str(scratch / folder.name), "zip", root_dir=folder)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(destination)
    Path(archive).unlink()


def unpack(
    outdir: Path,
    template: Mapping[str, Any],
    function_name: str,
    into: Path,
    dependencies_for_this_machine: Callable[[], Path],
) -> Unpacked:
    """The function named `function_name` (its FunctionName) unpacked under `into`."""
    resources = template["Resources"]
    [properties] = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["FunctionName"] == function_name
    ]
    home = into / function_name
    task, opt = home / "task", home / "opt"
    _zip_and_extract(_asset_folder(outdir, properties["Code"]), task, into)
    stand_ins: list[Path] = []
    for layer in properties.get("Layers", []):
        content = resources[layer["Ref"]]["Properties"]["Content"]
        staged = _asset_folder(outdir, content)
        if distributions(staged / "python"):
            here = dependencies_for_this_machine() / "python"
            shipped, stand_in = installed_files(staged / "python"), installed_files(here)
            assert shipped == stand_in, (
                f"the stand-in for layer {layer['Ref']} differs: only in the layer "
                f"{sorted(shipped - stand_in)[:10]}, only in the stand-in "
                f"{sorted(stand_in - shipped)[:10]}"
            )
            stand_ins.append(here)
        else:
            # Layers are extracted into /opt one after the other, a later one on top.
            _zip_and_extract(staged, opt, into)
    folders = [task, opt / "python", *stand_ins]
    return Unpacked(
        name=function_name,
        folders=folders,
        environment=properties.get("Environment", {}).get("Variables", {}),
        lambda_variables={
            "_HANDLER": properties["Handler"],
            "LAMBDA_TASK_ROOT": str(task),
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", 128)),
            TIMEOUT_ENV: str(properties.get("Timeout", 3)),
        },
    )


def resolve(value: Any, refs: Mapping[str, str], attributes: Mapping[tuple[str, str], str]) -> Any:
    """`value` with CloudFormation's intrinsics (Ref, Fn::GetAtt, Fn::Join) evaluated."""
    if isinstance(value, list):
        return [resolve(item, refs, attributes) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return refs[value["Ref"]]
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        return attributes[(logical_id, attribute)]
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, refs, attributes)) for part in parts)
    if any(key.startswith("Fn::") for key in value):
        raise AssertionError(f"an intrinsic this test does not evaluate: {value}")
    return {key: resolve(item, refs, attributes) for key, item in value.items()}


class FunctionProcess:
    """One warm execution environment of a function, in a clean interpreter of its own."""

    def __init__(self, function: Unpacked, environment: dict[str, str], runtime: Path) -> None:
        self.name = function.name
        bootstrap = runtime / BOOTSTRAP.name
        if not bootstrap.exists():
            runtime.mkdir(parents=True, exist_ok=True)
            shutil.copy(BOOTSTRAP, bootstrap)
        self.log = runtime / f"{function.name}.log"
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(bootstrap), *map(str, function.folders)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=runtime,
                env={**environment, **function.lambda_variables},
                text=True,
            )

    def ready(self, timeout: float = 60) -> None:
        """Wait for the function's init (its imports) to be done."""
        reply = self._read(timeout)
        assert reply.get("ready"), self._failure(reply.get("error", reply))

    def invoke(self, event: Any, timeout: float = 60) -> Any:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"event": event}) + "\n")
        self._process.stdin.flush()
        reply = self._read(timeout)
        assert "error" not in reply, self._failure(reply["error"])
        assert not reply["foreign"], f"{self.name} loaded modules from elsewhere: {reply}"
        return reply["result"]

    def lambda_handler(self, event: Any, context: Any = None) -> Any:
        """As a handler module is called (tests.support.handlers.ApiClient): the context is the
        bootstrap's own."""
        return self.invoke(event)

    def _read(self, timeout: float) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline() if readable else ""
        if not line:
            self.close()
            raise AssertionError(self._failure(f"no answer within {timeout} s"))
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _failure(self, what: Any) -> str:
        log = self.log.read_text(errors="replace")[-4000:]
        return f"{self.name}: {what}\n--- its output ---\n{log}"

    def close(self) -> None:
        """The environment is done with, as Lambda ends one: no shutdown to wait for."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def clean_environment(home: Path) -> dict[str, str]:
    """The variables every function process starts from: no shell's, no user's AWS files."""
    return {
        "PATH": os.defpath,
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
    }
