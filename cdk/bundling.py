"""Docker-free asset bundling: copy a source tree into the asset layout Lambda expects.

Why: CDK bundling defaults to a Docker container, and no Docker engine exists on the machines
that build this project. A Python `ILocalBundling` runs in-process during synthesis instead.
Our shared layer is pure Python (stdlib + pydantic, and pydantic comes with the Powertools layer),
so copying its packages (ccc_common and the shared core ccc_core) into `python/<package>/` is the
whole build.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache", "*.egg-info")
# Never pulled: local bundling always succeeds, and CDK only needs *an* image name in the options.
_UNUSED_IMAGE = DockerImage.from_registry("public.ecr.aws/sam/build-python3.13")


@jsii.implements(ILocalBundling)
class CopyTrees:
    """Copy each `source` to `<asset output>/<target>` (e.g. `python/ccc_common` for a layer)."""

    def __init__(self, trees: Mapping[str, Path]) -> None:
        for source in trees.values():
            if not source.is_dir():
                raise FileNotFoundError(f"asset source {source} is not a directory")
        self._trees = dict(trees)

    def try_bundle(self, output_dir: str, *_options: Any, **_kw: Any) -> bool:
        # jsii passes the BundlingOptions struct positionally; a plain copy needs none of it.
        for target, source in self._trees.items():
            destination = Path(output_dir) / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source, destination, ignore=_IGNORED, dirs_exist_ok=True)
        return True


def copy_tree_bundling(source: Path, target: str) -> BundlingOptions:
    """Bundling options whose only path is the local copy (Docker is never used)."""
    return copy_trees_bundling({target: source})


def copy_trees_bundling(trees: Mapping[str, Path]) -> BundlingOptions:
    """Like `copy_tree_bundling`, for an asset assembled from several source trees.

    The asset's hash must then come from the bundled output (`AssetHashType.OUTPUT`): the source
    path CDK hashes by default is only one of the trees."""
    return BundlingOptions(image=_UNUSED_IMAGE, local=CopyTrees(trees))
