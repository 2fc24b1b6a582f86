"""Make ``import torchvision`` work beside a CPU-only torch.

PyPI ships torchvision 0.28.0 only as a CUDA build. Beside the CPU build of torch 2.13.0 its compiled extension
does not load and ``import torchvision`` fails with ``operator torchvision::nms does not exist``. Its
pure-Python parts (models, dataset classes, ``transforms.v2``) work once the two operator schemas the package
registers at import time exist. :func:`install` puts an import hook in front of torchvision that defines them
when, and only when, that exact failure happens. tools/setup.sh installs the hook for every Python started in
the project's environment (the ``.pth`` file :data:`PTH_LINE`), so a researcher's own ``import torchvision``
works there; nclab's own modules call :func:`import_torchvision`, which works in any environment.

This module is imported at every interpreter start in the environment: it must not import torch at its top.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

PTH_LINE = "import nclab.torchvision_compat; nclab.torchvision_compat.install()\n"
_schemas: Any = None  # the torch.library.Library, kept alive: its definitions vanish with the object


def _define_schemas() -> None:
    global _schemas
    import torch

    _schemas = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        _schemas.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


class _RetryWithSchemas(importlib.abc.Loader):
    """torchvision's own loader; on the CPU-torch failure, defines the schemas and runs the package again."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:  # resource readers and the rest: the wrapped loader's
        return getattr(self.loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self.loader.exec_module(module)
        except RuntimeError as err:
            if "torchvision::nms" not in str(err) or _schemas is not None:
                raise
            _define_schemas()
            for name in [m for m in sys.modules if m.startswith("torchvision.")]:
                del sys.modules[name]  # the submodules of the failed attempt, imported afresh
            self.loader.exec_module(module)


class _TorchvisionHook(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "torchvision":
            return None
        sys.meta_path.remove(self)  # one import of torchvision per interpreter
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _RetryWithSchemas(spec.loader)
        return spec


def install() -> None:
    """Put the hook in front of the next ``import torchvision`` (nothing when it is imported or hooked)."""
    if "torchvision" not in sys.modules and not any(isinstance(f, _TorchvisionHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionHook())


def import_torchvision() -> ModuleType:
    install()
    import torchvision

    return torchvision
