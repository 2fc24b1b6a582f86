"""The layers of a network at every depth, captured in one forward pass (docs/methods.md, section 9); their
analysis is :mod:`nclab.depth`'s.

A layer is the output of the stem or of one residual block (``granularity`` "block") or stage ("stage") of a
ResNet, or of one convolution stage of LeNet, average-pooled to at most ``grid`` x ``grid`` and flattened, as
Harun, Gallardo & Kanan (ICML 2025) pool them. The last layer is h itself, the penultimate feature of the dumps
(the last block globally pooled, through the ETF head's BatchNorm where there is one). The features are computed
and analysed in the same job and never stored: at CIFAR-100 scale a checkpoint's pooled layers of every split
would take about 0.8 GB.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nclab.features import extract_layers
from nclab.models import LeNet, ResNet

GRANULARITIES = ("block", "stage")


def depth_modules(model: nn.Module, granularity: str) -> dict[str, nn.Module]:
    """The modules whose outputs are the layers before the last, by name, from the input side (the last layer,
    h, is named by :func:`last_layer`)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"layers.granularity must be one of {list(GRANULARITIES)}, got {granularity!r}")
    if isinstance(model, ResNet):
        modules = {"stem": model.stem}
        for i, blocks in enumerate(stage_blocks(model), 1):
            if granularity == "stage":  # a stage's output is its last block's
                modules[f"stage{i}"] = blocks[-1]
            else:
                modules.update({f"stage{i}.block{j}": block for j, block in enumerate(blocks, 1)})
        modules.popitem()  # the last block's output, globally pooled (and through the neck), is h
        return modules
    if isinstance(model, LeNet):  # after each convolution's ReLU, and its pooling where it has one
        stages = model.convolutions
        return {"conv1": stages[2], "conv2": stages[5], "conv3": stages[7]}
    raise ValueError(f"no layers defined for {type(model).__name__}")


def last_layer(model: nn.Module, granularity: str) -> str:
    """The name of the last layer, h: the last block or stage of a ResNet, LeNet's hidden layer."""
    if isinstance(model, LeNet):
        return "fc1"
    blocks = stage_blocks(model)
    return f"stage{len(blocks)}" if granularity == "stage" else f"stage{len(blocks)}.block{len(blocks[-1])}"


def layer_features(
    model: nn.Module, images: np.ndarray, mean: torch.Tensor, std: torch.Tensor, granularity: str, grid: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every layer's features of uint8 ``images`` by name in depth order (the last one h) and the logits: one
    forward pass of :func:`nclab.features.extract_layers`."""
    h, logits, found = extract_layers(model, images, mean, std, depth_modules(model, granularity), grid)
    return {**found, last_layer(model, granularity): h}, logits


def stage_blocks(model: ResNet) -> list[list[nn.Module]]:
    """The residual blocks of each stage: ResNet-18 and ResNet-50 hold one Sequential per stage, ResNet-32 one flat
    Sequential of blocks, cut here where the width (the last convolution's output channels) changes."""
    children = list(model.stages)
    if all(isinstance(child, nn.Sequential) for child in children):
        return [list(child) for child in children]
    stages: list[list[nn.Module]] = []
    width = None
    for block in children:
        out = [m for m in block.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        if out != width:
            stages.append([])
            width = out
        stages[-1].append(block)
    return stages
