"""Torch-free quantities the Snakefile needs to validate a config and plan the DAG (parsing stays fast)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any, Mapping, Sequence

FEATURES_PER_WIDTH = {
    "resnet18": 8,
    "resnet32": 4,
    "resnet50": 32,
}  # penultimate dimension / first-stage width, per architecture
FIXED_WIDTHS = {"lenet": 84}  # architectures without a width: their penultimate dimension
INPUT_SIDES = {"lenet": 28}  # architectures that take one image size only (the others pool globally)
SAFETENSORS_FILE = "model.safetensors"  # the weights of a model folder, as timm and huggingface_hub save one
TIMM_PREFIX = "timm:"  # an external model's architecture from timm: timm:<name>
INTERMEDIATES = "intermediates"  # an external entry's ``layers``: every output of timm's forward_intermediates


def feature_dim(arch: str, width: int | None) -> int:
    """Penultimate dimension of ``arch`` at ``width``, without building the network."""
    if arch in FIXED_WIDTHS:
        return FIXED_WIDTHS[arch]
    if arch not in FEATURES_PER_WIDTH:
        raise ValueError(f"unknown architecture {arch!r}; allowed: {sorted([*FEATURES_PER_WIDTH, *FIXED_WIDTHS])}")
    return FEATURES_PER_WIDTH[arch] * width


def network(model: Mapping[str, Any]) -> dict[str, Any]:
    """A configured ``model`` section as the network's spec: without ``width`` for an architecture that has none
    (LeNet), so that its runs do not depend on that key."""
    return {k: v for k, v in model.items() if not (k == "width" and model["arch"] in FIXED_WIDTHS)}


def checkpoint_schedule(epochs: int, requested: Sequence[int]) -> list[int]:
    """Sorted checkpoint epochs, always including the last one."""
    bad = [e for e in requested if not 1 <= e <= epochs]
    if bad:
        raise ValueError(f"checkpoint epochs {bad} are outside 1..{epochs}")
    return sorted(set(requested) | {epochs})


# The NC measures (columns of collapse.csv) set beside each checkpoint's OOD metrics in ood/trajectory.csv, each
# lower with more collapse; NC5 is added per OOD set (nc5_<set>).
TRAJECTORY_MEASURES = ("nc1", "nc2_equiangular_features", "nc3", "nc4_train", "cdnv", "gnc2")
LOSS_HEADS = {"ldam_drw": "normed", "etf": "etf"}  # classifier head per loss; the others train a linear head
HEADS_IGNORING_ROW_NORMS = ("normed", "etf")  # their logits depend on the directions of the w_c only
AFFINE_HEADS = ("linear",)  # logits = W h + b exactly, as ViM's origin u = -pinv(W) b assumes
FIXED_CLASSIFIER_LOSSES = ("etf",)  # their classifier is not trained
CLASSIFIER_STRATEGIES = ("proj", "slerp")  # they move the classifier


def strategy_applies(loss: str, strategy: str) -> bool:
    """Whether ``strategy`` can run with ``loss``: not when it moves a classifier that the loss keeps fixed."""
    return not (loss in FIXED_CLASSIFIER_LOSSES and strategy in CLASSIFIER_STRATEGIES)


def longtail_grid(
    ratios: Sequence[float], losses: Sequence[str], strategies: Sequence[str]
) -> list[tuple[str, str, str]]:
    """(ratio name, loss, strategy) of every long-tail run group whose strategy applies to its loss
    (:func:`strategy_applies`)."""
    return [
        (f"{ratio:g}", loss, strategy)
        for ratio in ratios
        for loss in losses
        for strategy in strategies
        if strategy_applies(loss, strategy)
    ]


@functools.cache
def _direct_nclab_imports(path: Path) -> frozenset[str]:
    """Names imported from the nclab package by the file ``path``, anywhere in it (parsed once per process:
    the Snakefile asks for every script's modules, and each job on a cluster parses the Snakefile again)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "nclab":
            names.update(alias.name for alias in node.names)  # from nclab import data, training
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nclab."):
            names.add(node.module.split(".")[1])  # from nclab.io import logged
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("nclab."))
    return frozenset(names)


def nclab_imports(script: str | Path, package: str | Path) -> list[str]:
    """The modules of the ``nclab`` package (folder ``package``) that ``script`` imports, directly or through
    other nclab modules, anywhere in the file (imports inside functions and branches included)."""
    package, found, todo = Path(package), set(), [Path(script)]
    while todo:
        for name in _direct_nclab_imports(todo.pop()):
            if name not in found and (package / f"{name}.py").is_file():
                found.add(name)
                todo.append(package / f"{name}.py")
    return sorted(found)
