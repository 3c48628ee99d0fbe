"""One error root per package: every exception class a package defines derives from its root.

Why: callers (the CLI, the enclave server, a Lambda handler) catch a package's refusals with one
`except` and leave real bugs to tracebacks; a new exception outside the root would escape that.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

from ccc.errors import CccError
from ccc_common.errors import CommonError
from ccc_core.errors import CoreError
from ccc_enclave.errors import EnclaveError
from cdk.errors import CdkAppError
from enclave_worker.parent.errors import ParentError

ROOTS: dict[str, type[Exception]] = {
    "ccc": CccError,
    "ccc_common": CommonError,
    "ccc_core": CoreError,
    "ccc_enclave": EnclaveError,
    "cdk": CdkAppError,
    "enclave_worker.parent": ParentError,
}
# Modules that only run as processes (their import has side effects on argv or the environment).
SKIP = {"ccc.local.lambdas", "ccc.demo"}


def _modules(package: str) -> list[ModuleType]:
    root = importlib.import_module(package)
    names = [package] + [info.name for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")]
    return [importlib.import_module(name) for name in names if name not in SKIP and not name.endswith("__main__")]


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_exception_a_package_defines_derives_from_its_root(package: str):
    root = ROOTS[package]
    defined = {
        f"{module.__name__}.{name}": cls
        for module in _modules(package)
        for name, cls in vars(module).items()
        if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == module.__name__
    }
    assert defined, f"{package} defines no exceptions: the root check would be vacuous"
    assert sorted(name for name, cls in defined.items() if not issubclass(cls, root)) == []
