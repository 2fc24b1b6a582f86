"""Neural Collapse and OOD detection at every depth, on the layers' features (docs/methods.md, section 9).

Per layer (captured by :mod:`nclab.layers`): NC1, Tr Sigma_W / Tr Sigma_B and CDNV on the training features; each
per-layer detector of LAYER_DETECTORS (Mahalanobis, KNN and Harun et al.'s linear-probe energy, fitted on that
layer's training features alone) against every OOD set; then each detector of COMBINED_DETECTORS over all layers
(Lee et al.'s multi-layer Mahalanobis). No torch: the depth part's tables read this module's names too.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from nclab import collapse
from nclab.ood import Scorer, Split, knn, mahalanobis
from nclab.ood_metrics import auroc, fpr_at_tpr

PROBE_STEPS = 1000  # the most L-BFGS iterations of the linear probe (full batch)
PROBE_TOLERANCE = 1e-8  # it stops where no gradient entry exceeds this
PROBE_WEIGHT_DECAY = 1e-2  # its L2 penalty on W, per training sample
ALL_LAYERS = "all"  # the layer name of the combined detectors' rows


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
    rows = np.arange(n)

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        weight, bias = flat[: num_classes * d].reshape(num_classes, d), flat[num_classes * d :]
        logits = x @ weight.T + bias
        shift = logits.max(axis=1)
        softmax = np.exp(logits - shift[:, None])
        totals = softmax.sum(axis=1)
        energies = shift + np.log(totals)
        loss = np.mean(energies - logits[rows, train.labels]) + PROBE_WEIGHT_DECAY * np.sum(weight**2)
        softmax /= totals[:, None]
        softmax[rows, train.labels] -= 1.0
        softmax /= n  # d loss / d logits
        gradient = np.concatenate([(softmax.T @ x + 2 * PROBE_WEIGHT_DECAY * weight).ravel(), softmax.sum(axis=0)])
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


FINAL_ONLY_DETECTORS = ("knn", "probe_energy")  # those layers.final_only may leave to the final checkpoint (the schema)


def deferred(final_only: Sequence[str], epoch: int, epochs: Sequence[int]) -> Sequence[str]:
    """The detectors of ``layers.final_only`` left out at ``epoch``: all of them but at the last of ``epochs``."""
    return () if epoch == max(epochs) else final_only


def multi_mahalanobis(per_layer: Sequence[np.ndarray]) -> np.ndarray:
    """Lee et al.'s multi-layer Mahalanobis with uniform weights (pytorch-ood's MultiMahalanobis): the sum over
    layers of each layer's :func:`nclab.ood.mahalanobis` scores of the same samples (``per_layer``, one array per
    layer, each from the detector fitted on that layer's training features)."""
    return np.sum(per_layer, axis=0)


COMBINED_DETECTORS: dict[str, tuple[str, Callable[[Sequence[np.ndarray]], np.ndarray]]] = {
    "multi_mahalanobis": ("mahalanobis", multi_mahalanobis),  # name -> (the per-layer detector, its combination)
}


def layer_rows(
    layers: Mapping[str, Mapping[str, np.ndarray]],
    labels: np.ndarray,
    num_classes: int,
    ood_sets: Sequence[str],
    knn_k: int,
    skipped: Sequence[str] = (),
) -> list[dict[str, object]]:
    """One checkpoint's rows: per layer (``layers``: split -> layer name -> features, the splits "train", "test"
    and each OOD set) its collapse measures and, per detector (but the ``skipped`` ones) and OOD set, AUROC and
    FPR@95 (ID positive); then the combined detectors' rows (layer "all", no collapse measures)."""
    if unknown := [m for m in skipped if m not in FINAL_ONLY_DETECTORS]:
        raise ValueError(f"layers.final_only: {unknown} cannot be skipped; allowed: {list(FINAL_ONLY_DETECTORS)}")
    names = list(layers["train"])
    splits = ["test", *ood_sets]
    methods = [m for m in LAYER_DETECTORS if m not in skipped]
    rows, per_layer = [], {method: {split: [] for split in splits} for method in methods}
    for depth, name in enumerate(names):
        train = layers["train"][name]
        measures = {"layer": name, "depth": depth, "dim": train.shape[1], **collapse_row(train, labels, num_classes)}
        for method in methods:
            scorer = LAYER_DETECTORS[method](Split(train, None, labels), num_classes, knn_k)
            for split in splits:
                per_layer[method][split].append(scorer(Split(layers[split][name], None)))
            scores = {split: per_layer[method][split][-1] for split in splits}
            for ood in ood_sets:
                rows.append({**measures, "method": method, "ood": ood, **detection(scores["test"], scores[ood])})
    everything = {"layer": ALL_LAYERS, "depth": len(names), "dim": sum(layers["train"][n].shape[1] for n in names)}
    empty = {"nc1": np.nan, "nc1_trace_ratio": np.nan, "cdnv": np.nan}
    for method, (base, combine) in COMBINED_DETECTORS.items():
        combined = {split: combine(per_layer[base][split]) for split in splits}
        for ood in ood_sets:
            rows.append(
                everything | empty | {"method": method, "ood": ood, **detection(combined["test"], combined[ood])}
            )
    return rows


def nc1_by_depth(rows: Sequence[Mapping[str, object]]) -> str:
    """One checkpoint's NC1 of every layer, from the input side, for the job's log ("stem 2.54, stage1 1.1, ...")."""
    first = [r for r in rows if r["method"] == next(iter(LAYER_DETECTORS)) and r["ood"] == rows[0]["ood"]]
    return ", ".join(f"{r['layer']} {r['nc1']:.3g}" for r in first)


def detection(id_scores: np.ndarray, ood_scores: np.ndarray) -> dict[str, float]:
    """AUROC and FPR@95 (ID positive) of one detector against one OOD set (:mod:`nclab.ood_metrics`)."""
    return {"auroc": auroc(id_scores, ood_scores), "fpr95": fpr_at_tpr(id_scores, ood_scores)}
