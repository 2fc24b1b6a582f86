"""Import torchvision beside a CPU-only torch.

PyPI ships torchvision 0.28.0 only as a CUDA build. With the CPU build of torch 2.13.0 its compiled extension
does not load and ``import torchvision`` fails with ``operator torchvision::nms does not exist``. The
pure-Python parts nclab uses (dataset classes, ``transforms.v2``) work once the two operator schemas the
package registers at import time exist, so they are defined here, and only when that exact failure happens.
"""

from __future__ import annotations

import sys
from types import ModuleType

import torch

_schemas: torch.library.Library | None = None  # kept alive: the definitions vanish with the object


def import_torchvision() -> ModuleType:
    global _schemas
    try:
        import torchvision
    except RuntimeError as err:
        if "torchvision::nms" not in str(err) or _schemas is not None:
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _schemas = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            _schemas.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import torchvision
    return torchvision
