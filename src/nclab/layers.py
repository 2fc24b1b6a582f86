"""Neural Collapse and OOD detection at every depth of a network (docs/methods.md, section 9).

A layer is the output of the stem or of one residual block (``granularity`` "block") or stage ("stage") of a
ResNet, or of one convolution stage of LeNet, average-pooled to at most ``grid`` x ``grid`` and flattened, as
Harun, Gallardo & Kanan (ICML 2025) pool them. The last layer is h itself, the penultimate feature of the dumps
(the last block globally pooled, through the ETF head's BatchNorm where there is one). Per layer: NC1, Tr Sigma_W
/ Tr Sigma_B and CDNV on the training features; Mahalanobis, KNN and the energy of a linear probe fitted on that
layer's training features alone, against every OOD set; and Lee et al.'s (NeurIPS 2018) multi-layer Mahalanobis
over all layers. The features are computed and analysed in the same job and never stored: at CIFAR-100 scale a
checkpoint's pooled layers of every split would take about 0.8 GB.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import logsumexp
from torch import nn

from nclab import collapse
from nclab.features import extract_layers
from nclab.models import LeNet, ResNet
from nclab.ood import Scorer, Split, knn, mahalanobis
from nclab.ood_metrics import auroc, fpr_at_tpr

GRANULARITIES = ("block", "stage")
PROBE_STEPS = 1000  # the most L-BFGS iterations of the linear probe (full batch)
PROBE_TOLERANCE = 1e-8  # it stops where no gradient entry exceeds this
PROBE_WEIGHT_DECAY = 1e-2  # its L2 penalty on W, per training sample
ALL_LAYERS = "all"  # the layer name of the multi-layer detector's rows


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


def collapse_row(features: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, float]:
    """NC1 = Tr(Sigma_W Sigma_B^+)/C, Tr Sigma_W / Tr Sigma_B and CDNV of one layer's training features
    (:mod:`nclab.collapse`)."""
    geometry = collapse.class_geometry(features, labels, num_classes)
    return {
        "nc1": collapse.nc1(features, labels, geometry),
        "nc1_trace_ratio": collapse.nc1_trace_ratio(features, labels, geometry),
        "cdnv": collapse.cdnv(features, labels, geometry),
    }


def probe_energy(train: Split, num_classes: int) -> Scorer:
    """Harun et al.'s linear-probe Energy: a softmax-regression probe (W, b) fitted on one layer's standardised
    training features alone, minimising the mean cross-entropy + PROBE_WEIGHT_DECAY ||W||^2 (a strictly convex
    objective: L-BFGS from zero, float64, to a gradient of PROBE_TOLERANCE), scored as logsumexp(W x + b)."""
    x = np.asarray(train.features, np.float64)
    centre, scale = x.mean(axis=0), np.maximum(x.std(axis=0, ddof=1), 1e-12)
    x = (x - centre) / scale
    n, d = x.shape
    targets = np.eye(num_classes)[train.labels]

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        weight, bias = flat[: num_classes * d].reshape(num_classes, d), flat[num_classes * d :]
        logits = x @ weight.T + bias
        energies = logsumexp(logits, axis=1)
        loss = np.mean(energies - np.sum(logits * targets, axis=1)) + PROBE_WEIGHT_DECAY * np.sum(weight**2)
        residual = (np.exp(logits - energies[:, None]) - targets) / n  # d loss / d logits
        gradient = np.concatenate([(residual.T @ x + 2 * PROBE_WEIGHT_DECAY * weight).ravel(), residual.sum(axis=0)])
        return loss, gradient

    fit = minimize(
        objective,
        np.zeros(num_classes * (d + 1)),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": PROBE_STEPS, "gtol": PROBE_TOLERANCE, "ftol": 0.0},
    )
    weight, bias = fit.x[: num_classes * d].reshape(num_classes, d), fit.x[num_classes * d :]
    return lambda s: logsumexp(((np.asarray(s.features, np.float64) - centre) / scale) @ weight.T + bias, axis=1)


LAYER_DETECTORS: dict[str, Callable[[Split, int, int], Scorer]] = {  # fit(train, classes, knn k) -> scorer
    "mahalanobis": lambda train, classes, k: mahalanobis(train, None, None),
    "knn": lambda train, classes, k: knn(train, None, None, k=k),
    "probe_energy": lambda train, classes, k: probe_energy(train, classes),
}


def multi_mahalanobis(per_layer: Sequence[np.ndarray]) -> np.ndarray:
    """Lee et al.'s multi-layer Mahalanobis with uniform weights (pytorch-ood's MultiMahalanobis): the sum over
    layers of each layer's :func:`nclab.ood.mahalanobis` scores of the same samples (``per_layer``, one array per
    layer, each from the detector fitted on that layer's training features)."""
    return np.sum(per_layer, axis=0)


def layer_rows(
    layers: Mapping[str, Mapping[str, np.ndarray]],
    labels: np.ndarray,
    num_classes: int,
    ood_sets: Sequence[str],
    knn_k: int,
) -> list[dict[str, object]]:
    """One checkpoint's rows: per layer (``layers``: split -> layer name -> features, the splits "train", "test"
    and each OOD set) its collapse measures and, per detector and OOD set, AUROC and FPR@95 (ID positive); then
    the multi-layer Mahalanobis detector's rows (layer "all", no collapse measures)."""
    names = list(layers["train"])
    splits = ["test", *ood_sets]
    rows, mahalanobis_scores = [], {split: [] for split in splits}  # per split, each layer's (multi-layer)
    for depth, name in enumerate(names):
        train = layers["train"][name]
        measures = {"layer": name, "depth": depth, "dim": train.shape[1], **collapse_row(train, labels, num_classes)}
        for method, fit in LAYER_DETECTORS.items():
            scorer = fit(Split(train, None, labels), num_classes, knn_k)
            scores = {split: scorer(Split(layers[split][name], None)) for split in splits}
            for ood in ood_sets:
                rows.append({**measures, "method": method, "ood": ood, **detection(scores["test"], scores[ood])})
            if method == "mahalanobis":
                for split in splits:
                    mahalanobis_scores[split].append(scores[split])
    summed = {split: multi_mahalanobis(mahalanobis_scores[split]) for split in splits}
    empty = {"nc1": np.nan, "nc1_trace_ratio": np.nan, "cdnv": np.nan}
    for ood in ood_sets:
        rows.append(
            {"layer": ALL_LAYERS, "depth": len(names), "dim": sum(layers["train"][n].shape[1] for n in names), **empty}
            | {"method": "multi_mahalanobis", "ood": ood, **detection(summed["test"], summed[ood])}
        )
    return rows


def detection(id_scores: np.ndarray, ood_scores: np.ndarray) -> dict[str, float]:
    """AUROC and FPR@95 (ID positive) of one detector against one OOD set (:mod:`nclab.ood_metrics`)."""
    return {"auroc": auroc(id_scores, ood_scores), "fpr95": fpr_at_tpr(id_scores, ood_scores)}
