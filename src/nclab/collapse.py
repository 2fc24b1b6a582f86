"""Neural Collapse metrics NC1-NC5 and feature/classifier alignment (docs/methods.md, section 1).

Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep learning training",
PNAS 2020 (NC1-NC4); Ammar et al., "NECO: NEural Collapse Based Out-of-distribution detection", ICLR 2024 (NC5).
Further measures beside them (trace-ratio NC1, CDNV, GNC2, self-duality, ETF error) cite their sources below.
The global mean is the mean of the class means (Papyan's convention), not the sample mean; under class
imbalance this weighs every class equally, while Sigma_W stays the average over samples.

The classifier W is the one the logits depend on (:func:`classifier`): for heads whose logits ignore the row
norms (LDAM's normalised head, the fixed ETF) its rows are normalised, so that NC2's classifier equinorm, NC3
and ||w_c|| measure the geometry the network uses, not an optimisation artefact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nclab.longtail import GROUPS, shot_groups
from nclab.plan import HEADS_IGNORING_ROW_NORMS


@dataclass(frozen=True)
class ClassGeometry:
    means: np.ndarray  # (C, d) class means mu_c
    global_mean: np.ndarray  # (d,) mean of the class means mu_G

    @property
    def centred(self) -> np.ndarray:
        """(C, d) centred class means, the rows of M~^T."""
        return self.means - self.global_mean


def classifier(dump: dict[str, np.ndarray]) -> np.ndarray:
    """The dump's classifier rows, normalised when its head's logits ignore their norms."""
    weight = np.asarray(dump["weight"], dtype=np.float64)
    if str(dump["head"]) in HEADS_IGNORING_ROW_NORMS:
        return weight / np.linalg.norm(weight, axis=1, keepdims=True)
    return weight


def class_geometry(features: np.ndarray, labels: np.ndarray, num_classes: int) -> ClassGeometry:
    features = np.asarray(features, dtype=np.float64)
    counts = np.bincount(labels, minlength=num_classes)
    if (counts == 0).any():
        raise ValueError(f"classes without samples: {np.flatnonzero(counts == 0).tolist()}")
    sums = np.zeros((num_classes, features.shape[1]))
    np.add.at(sums, labels, features)
    means = sums / counts[:, None]
    return ClassGeometry(means, means.mean(axis=0))


def nc1(features: np.ndarray, labels: np.ndarray, geometry: ClassGeometry) -> float:
    """NC1 = Tr(Sigma_W Sigma_B^+) / C, with Sigma_B^+ the Moore-Penrose pseudo-inverse (rank C - 1 at most).

    Computed in the eigenspace of Sigma_B = M~ M~^T / C: with Sigma_B = U diag(lambda) U^T,
    Tr(Sigma_W Sigma_B^+) = sum_k u_k^T Sigma_W u_k / lambda_k, and u_k^T Sigma_W u_k is the mean squared
    projection of the within-class residuals on u_k, so no d x d matrix is formed. As numpy's pinv, the sum
    leaves out the singular values of M~ below max(C, d) x eps x the largest: those of a Sigma_B of lower rank,
    where class means coincide.
    """
    num_classes = len(geometry.means)
    rank = min(num_classes - 1, geometry.means.shape[1])
    u, s, _ = np.linalg.svd(geometry.centred.T / np.sqrt(num_classes), full_matrices=False)
    cutoff = max(geometry.means.shape) * np.finfo(np.float64).eps * s[0]
    rank = min(rank, int(np.sum(s > cutoff)))
    u, eigenvalues = u[:, :rank], s[:rank] ** 2
    residuals = np.asarray(features, dtype=np.float64) - geometry.means[labels]
    within = np.mean((residuals @ u) ** 2, axis=0)
    return float(np.sum(within / eigenvalues) / num_classes)


def _cosines(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


def equinorm(vectors: np.ndarray) -> float:
    """std_c ||v_c|| / mean_c ||v_c|| (NC2, equal norms)."""
    norms = np.linalg.norm(vectors, axis=1)
    return float(norms.std() / norms.mean())


def equiangularity(vectors: np.ndarray) -> float:
    """mean over c != c' of |cos(v_c, v_c') + 1/(C-1)| (NC2, simplex angles)."""
    num_classes = len(vectors)
    off_diagonal = ~np.eye(num_classes, dtype=bool)
    return float(np.mean(np.abs(_cosines(vectors)[off_diagonal] + 1.0 / (num_classes - 1))))


def max_angle(vectors: np.ndarray) -> float:
    """mean over c of max_{c' != c} cos(v_c, v_c'), minus the simplex value -1/(C-1) (NC2, max-angle)."""
    num_classes = len(vectors)
    cos = _cosines(vectors)
    np.fill_diagonal(cos, -np.inf)
    return float(np.mean(cos.max(axis=1)) + 1.0 / (num_classes - 1))


def nc3(weight: np.ndarray, geometry: ClassGeometry) -> float:
    """NC3 (self-duality) = || W/||W||_F - M~^T/||M~||_F ||_F^2."""
    w = np.asarray(weight, dtype=np.float64)
    m = geometry.centred
    return float(np.sum((w / np.linalg.norm(w) - m / np.linalg.norm(m)) ** 2))


def ncc_predict(features: np.ndarray, geometry: ClassGeometry) -> np.ndarray:
    """Nearest-class-centre prediction argmin_c ||h - mu_c||."""
    h = np.asarray(features, dtype=np.float64)
    distances = (h**2).sum(1)[:, None] - 2 * h @ geometry.means.T + (geometry.means**2).sum(1)[None, :]
    return distances.argmin(axis=1)


def nc4(logits: np.ndarray, features: np.ndarray, geometry: ClassGeometry) -> float:
    """NC4 = fraction of samples whose network prediction differs from the NCC prediction."""
    return float(np.mean(np.asarray(logits).argmax(axis=1) != ncc_predict(features, geometry)))


def nc5(ood_features: np.ndarray, geometry: ClassGeometry, centred: bool) -> float:
    """NC5 = (1/C) sum_c |cos(mu_c, mu_OOD)| (NECO reference code: uncentred means).

    With ``centred=True`` both means are first centred by the ID global mean mu_G.
    """
    ood_mean = np.asarray(ood_features, dtype=np.float64).mean(axis=0)
    means = geometry.means
    if centred:
        means, ood_mean = means - geometry.global_mean, ood_mean - geometry.global_mean
    cos = means @ ood_mean / (np.linalg.norm(means, axis=1) * np.linalg.norm(ood_mean))
    return float(np.mean(np.abs(cos)))


def alignment(weight: np.ndarray, geometry: ClassGeometry) -> np.ndarray:
    """Per-class alignment a_c = cos(mu~_c, w_c)."""
    w, m = np.asarray(weight, dtype=np.float64), geometry.centred
    return np.sum(w * m, axis=1) / (np.linalg.norm(w, axis=1) * np.linalg.norm(m, axis=1))


def nc1_trace_ratio(features: np.ndarray, labels: np.ndarray, geometry: ClassGeometry) -> float:
    """Tr(Sigma_W) / Tr(Sigma_B) (Tirer, Huang & Niles-Weed, "Perturbation analysis of neural collapse", ICML 2023).

    Tr(Sigma_W) is the mean over samples of ||h_i - mu_{y_i}||^2 and Tr(Sigma_B) the mean over classes of
    ||mu_c - mu_G||^2: no d x d matrix is formed.
    """
    residuals = np.asarray(features, dtype=np.float64) - geometry.means[labels]
    within = np.mean(np.sum(residuals**2, axis=1))
    between = np.mean(np.sum(geometry.centred**2, axis=1))
    return float(within / between)


def _squared_distances(vectors: np.ndarray) -> np.ndarray:
    """(C, C) matrix of ||v_c - v_c'||^2 from the Gram matrix (no C x C x d array)."""
    squared_norms = np.sum(vectors**2, axis=1)
    return np.maximum(squared_norms[:, None] + squared_norms[None, :] - 2 * vectors @ vectors.T, 0.0)


def cdnv(features: np.ndarray, labels: np.ndarray, geometry: ClassGeometry) -> float:
    """Class-distance normalised variance (Galanti, Gyorgy & Hutter, "On the role of neural collapse in transfer
    learning", ICLR 2022): the mean over c != c' of (sigma_c^2 + sigma_c'^2) / (2 ||mu_c - mu_c'||^2), with
    sigma_c^2 the mean over class-c samples of ||h - mu_c||^2. Infinite when two class means coincide.
    """
    num_classes = len(geometry.means)
    residuals = np.asarray(features, dtype=np.float64) - geometry.means[labels]
    variances = np.bincount(labels, weights=np.sum(residuals**2, axis=1), minlength=num_classes) / np.bincount(
        labels, minlength=num_classes
    )
    off_diagonal = ~np.eye(num_classes, dtype=bool)
    spreads = (variances[:, None] + variances[None, :])[off_diagonal]
    distances = _squared_distances(geometry.centred)[off_diagonal]
    if (distances == 0).any():
        return math.inf
    return float(np.mean(spreads / (2 * distances)))


def gnc2(geometry: ClassGeometry) -> float:
    """GNC2, hyperspherical uniformity (Liu et al., "Generalizing and decoupling neural collapse via hyperspherical
    uniformity gap", ICLR 2023; measured as in Wu & Papyan, "Linguistic collapse", NeurIPS 2024): the standard
    deviation (ddof 0) over the pairs c < c' of log(1 / ||u_c - u_c'||), u_c = mu~_c / ||mu~_c||.

    0 when all pairwise distances are equal, as for a simplex ETF; infinite when two centred class means point the
    same way (a pair's log-kernel is then infinite).
    """
    centred = geometry.centred
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    upper = np.triu_indices(len(unit), k=1)
    distances = _squared_distances(unit)[upper]
    if (distances == 0).any():
        return math.inf
    return float(np.std(-0.5 * np.log(distances)))


def self_duality(weight: np.ndarray, geometry: ClassGeometry) -> float:
    """|| W/||W||_F - M~^T/||M~||_F ||_F, the square root of :func:`nc3` (Papyan et al. 2020's NC3 in matrix form,
    Kothapalli, "Neural collapse: a review on modelling principles and generalization", TMLR 2023)."""
    return float(np.sqrt(nc3(weight, geometry)))


def etf_error(geometry: ClassGeometry) -> float:
    """|| G/||G||_F - (I - 11^T/C)/||I - 11^T/C||_F ||_F with G = M~^T M~ the (C, C) Gram matrix of the centred
    means (the simplex-ETF error of Zhu et al., "A geometric analysis of neural collapse with unconstrained
    features", NeurIPS 2021, applied to the means); ||I - 11^T/C||_F = sqrt(C - 1)."""
    centred = geometry.centred
    num_classes = len(centred)
    gram = centred @ centred.T
    target = (np.eye(num_classes) - 1.0 / num_classes) / np.sqrt(num_classes - 1)
    return float(np.linalg.norm(gram / np.linalg.norm(gram) - target))


INFINITE_WHEN_MEANS_COINCIDE = ("cdnv", "gnc2")  # measures whose definition divides by a distance between means


def collapse_metrics(dump: dict[str, np.ndarray], num_classes: int, ood_sets: list[str]) -> dict[str, float]:
    """Every NC metric of one checkpoint, from its feature dump (train statistics, test for NCC/NC4). Those of
    :data:`INFINITE_WHEN_MEANS_COINCIDE` may be infinite; any other non-finite metric is an error."""
    geometry = class_geometry(dump["train_features"], dump["train_labels"], num_classes)
    weight = classifier(dump)
    metrics = {
        "nc1": nc1(dump["train_features"], dump["train_labels"], geometry),
        "nc2_equinorm_features": equinorm(geometry.centred),
        "nc2_equinorm_classifier": equinorm(weight),
        "nc2_equiangular_features": equiangularity(geometry.centred),
        "nc2_equiangular_classifier": equiangularity(weight),
        "nc2_maxangle_features": max_angle(geometry.centred),
        "nc3": nc3(weight, geometry),
        "alignment_mean": float(np.mean(alignment(weight, geometry))),
        "nc1_trace_ratio": nc1_trace_ratio(dump["train_features"], dump["train_labels"], geometry),
        "cdnv": cdnv(dump["train_features"], dump["train_labels"], geometry),
        "gnc2": gnc2(geometry),
        "self_duality": self_duality(weight, geometry),
        "etf_error": etf_error(geometry),
    }
    for split in ("train", "test"):
        features, logits, labels = (dump[f"{split}_{k}"] for k in ("features", "logits", "labels"))
        metrics[f"nc4_{split}"] = nc4(logits, features, geometry)
        metrics[f"network_accuracy_{split}"] = float(np.mean(logits.argmax(axis=1) == labels))
        metrics[f"ncc_accuracy_{split}"] = float(np.mean(ncc_predict(features, geometry) == labels))
    for name in ood_sets:
        metrics[f"nc5_{name}"] = nc5(dump[f"{name}_features"], geometry, centred=False)
        metrics[f"nc5_centred_{name}"] = nc5(dump[f"{name}_features"], geometry, centred=True)
    bad = [k for k, v in metrics.items() if not np.isfinite(v) and not (k in INFINITE_WHEN_MEANS_COINCIDE and v > 0)]
    if bad:
        accuracy = metrics["network_accuracy_train"]
        raise ValueError(
            f"non-finite collapse metrics: {bad}; some class means coincide (training accuracy {accuracy:.3f}): "
            "where it is near chance, the network's features died in training (see the run's train.log)"
        )
    return metrics


def minority_collapse(weight: np.ndarray) -> float:
    """Mean pairwise cos(w_c, w_c') over the given classifier rows (1 when they collapse onto one direction)."""
    num_classes = len(weight)
    off_diagonal = ~np.eye(num_classes, dtype=bool)
    return float(np.mean(_cosines(np.asarray(weight, dtype=np.float64))[off_diagonal]))


def class_table(dump: dict[str, np.ndarray], num_classes: int) -> dict[str, np.ndarray]:
    """Per class: training images n_c, test accuracy, alignment a_c, ||w_c|| and ||mu~_c||."""
    geometry = class_geometry(dump["train_features"], dump["train_labels"], num_classes)
    correct = dump["test_logits"].argmax(axis=1) == dump["test_labels"]
    weight = classifier(dump)
    return {
        "class": np.arange(num_classes),
        "train_count": np.bincount(dump["train_labels"], minlength=num_classes),
        "test_accuracy": np.bincount(dump["test_labels"], weights=correct, minlength=num_classes)
        / np.bincount(dump["test_labels"], minlength=num_classes),
        "alignment": alignment(weight, geometry),
        "classifier_norm": np.linalg.norm(weight, axis=1),
        "feature_norm": np.linalg.norm(geometry.centred, axis=1),
    }


def group_metrics(dump: dict[str, np.ndarray], table: dict[str, np.ndarray], many: int, few: int) -> dict[str, float]:
    """Per shot group (many > ``many``, few < ``few`` training images): the number of classes, the test
    accuracy and the mean alignment a_c; minority collapse among the few-shot classifiers. ``table`` is the
    dump's :func:`class_table`.

    A group without classes (or with one class, for minority collapse) gives NaN: the quantity is undefined.
    """
    groups = shot_groups(table["train_count"], many, few)
    correct = dump["test_logits"].argmax(axis=1) == dump["test_labels"]
    sample_groups = groups[dump["test_labels"]]
    metrics: dict[str, float] = {}
    for group in GROUPS:
        members = groups == group
        metrics[f"classes_{group}"] = float(members.sum())
        metrics[f"accuracy_{group}"] = float(correct[sample_groups == group].mean()) if members.any() else np.nan
        metrics[f"alignment_{group}"] = float(table["alignment"][members].mean()) if members.any() else np.nan
    few_rows = classifier(dump)[groups == "few"]
    metrics["minority_collapse"] = minority_collapse(few_rows) if len(few_rows) > 1 else np.nan
    return metrics
