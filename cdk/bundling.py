"""Docker-free asset bundling: copy a source tree into the asset layout Lambda expects.

Why: CDK bundling defaults to a Docker container, and no Docker engine exists on the machines
that build this project. A Python `ILocalBundling` runs in-process during synthesis instead.
Our shared layer is pure Python (stdlib + pydantic, and pydantic comes with the Powertools layer),
so copying the package into `python/<package>/` is the whole build.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache", "*.egg-info")
# Never pulled: local bundling always succeeds, and CDK only needs *an* image name in the options.
_UNUSED_IMAGE = DockerImage.from_registry("public.ecr.aws/sam/build-python3.13")


@jsii.implements(ILocalBundling)
class CopyTree:
    """Copy `source` to `<asset output>/<target>` (e.g. `python/ccc_common` for a layer)."""

    def __init__(self, source: Path, target: str) -> None:
        if not source.is_dir():
            raise FileNotFoundError(f"asset source {source} is not a directory")
        self._source = source
        self._target = target

    def try_bundle(self, output_dir: str, *_options: Any, **_kw: Any) -> bool:
        # jsii passes the BundlingOptions struct positionally; a plain copy needs none of it.
        destination = Path(output_dir) / self._target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self._source, destination, ignore=_IGNORED, dirs_exist_ok=True)
        return True


def copy_tree_bundling(source: Path, target: str) -> BundlingOptions:
    """Bundling options whose only path is the local copy (Docker is never used)."""
    return BundlingOptions(image=_UNUSED_IMAGE, local=CopyTree(source, target))
