"""Post-hoc OOD scores (docs/methods.md, section 2). Every score: higher = more in-distribution.

Each method is one function ``fit(train, weight, bias, *, hyperparameters) -> scorer`` fitted on ID training
features only; the scorer maps a :class:`Split` to one score per sample. Add a method by writing such a
function, one :class:`Score` record in :data:`SCORES`, its entry in the schema (``ood.scores``: its
hyperparameters' types, ranges and defaults) and its display name in :mod:`nclab.names`; a test checks that
the names agree.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import logsumexp, softmax

from nclab.plan import AFFINE_HEADS


@dataclass(frozen=True)
class Split:
    features: np.ndarray  # (N, d) penultimate features h
    logits: np.ndarray  # (N, C) logits z
    labels: np.ndarray | None = None  # training labels, where a method needs them


Scorer = Callable[[Split], np.ndarray]


def msp(train: Split, weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """Maximum softmax probability (Hendrycks & Gimpel, ICLR 2017)."""
    return lambda s: softmax(np.asarray(s.logits, np.float64), axis=1).max(axis=1)


def maxlogit(train: Split, weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """Maximum logit (Hendrycks et al., ICML 2022)."""
    return lambda s: np.asarray(s.logits, np.float64).max(axis=1)


def energy(train: Split, weight: np.ndarray, bias: np.ndarray, *, temperature: float) -> Scorer:
    """Negative free energy T * logsumexp(z / T) (Liu et al., NeurIPS 2020)."""
    return lambda s: temperature * logsumexp(np.asarray(s.logits, np.float64) / temperature, axis=1)


def mahalanobis(train: Split, weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """max_c -(h - mu_c)^T P (h - mu_c), tied MLE covariance, P its pseudo-inverse (Lee et al., NeurIPS 2018)."""
    h = np.asarray(train.features, np.float64)
    classes = np.unique(train.labels)
    means = np.stack([h[train.labels == c].mean(axis=0) for c in classes])
    residuals = h - means[np.searchsorted(classes, train.labels)]
    precision = np.linalg.pinv(residuals.T @ residuals / len(h), hermitian=True)
    mean_terms = np.einsum("cd,de,ce->c", means, precision, means)

    def score(s: Split) -> np.ndarray:
        x = np.asarray(s.features, np.float64)
        xp = x @ precision
        distances = np.sum(xp * x, axis=1)[:, None] - 2 * xp @ means.T + mean_terms[None, :]
        return -distances.min(axis=1)

    return score


def vim(train: Split, weight: np.ndarray, bias: np.ndarray, *, dim: int) -> Scorer:
    """Virtual-logit matching (Wang et al., CVPR 2022): logsumexp(z) - alpha ||(h - u) R||.

    u = -pinv(W) b; R spans the eigenvectors of the uncentred covariance of h - u beyond the top ``dim``;
    alpha = mean_train max_c z_c / mean_train ||(h - u) R||.
    """
    h = np.asarray(train.features, np.float64)
    if not 0 < dim < h.shape[1]:
        raise ValueError(f"ViM dim must be in 1..{h.shape[1] - 1} (feature dimension {h.shape[1]}), got {dim}")
    origin = -np.linalg.pinv(np.asarray(weight, np.float64)) @ np.asarray(bias, np.float64)
    centred = h - origin
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / len(h))
    residual_space = eigenvectors[:, np.argsort(eigenvalues)[::-1][dim:]]
    alpha = (
        np.asarray(train.logits, np.float64).max(axis=1).mean()
        / np.linalg.norm(centred @ residual_space, axis=1).mean()
    )

    def score(s: Split) -> np.ndarray:
        virtual_logit = alpha * np.linalg.norm((np.asarray(s.features, np.float64) - origin) @ residual_space, axis=1)
        return logsumexp(np.asarray(s.logits, np.float64), axis=1) - virtual_logit

    return score


def neco(train: Split, weight: np.ndarray, bias: np.ndarray, *, dim: int) -> Scorer:
    """NECO (Ammar et al., ICLR 2024): ||P_D s(h)|| / ||s(h)||, s a standard scaler fitted on train and
    P_D the projection on the first ``dim`` principal components of s(h_train). No max-logit factor (ResNet)."""
    h = np.asarray(train.features, np.float64)
    if not 0 < dim <= h.shape[1]:
        raise ValueError(f"NECO dim must be in 1..{h.shape[1]} (feature dimension), got {dim}")
    mean, scale = h.mean(axis=0), h.std(axis=0)
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0  # constant (dead) features, as StandardScaler does
    scaled = (h - mean) / scale
    eigenvalues, eigenvectors = np.linalg.eigh(scaled.T @ scaled)
    principal = eigenvectors[:, np.argsort(eigenvalues)[::-1][:dim]]

    def score(s: Split) -> np.ndarray:
        x = (np.asarray(s.features, np.float64) - mean) / scale
        return np.linalg.norm(x @ principal, axis=1) / np.linalg.norm(x, axis=1)

    return score


KNN_QUERY_CHUNK = 1024  # queries per distance block: bounds memory at CHUNK x N_train floats


def knn(train: Split, weight: np.ndarray, bias: np.ndarray, *, k: int) -> Scorer:
    """-||h^ - h^_(k)||, the distance to the k-th nearest normalised training feature (Sun et al., ICML 2022)."""
    bank = _unit(np.asarray(train.features, np.float32))
    if not 0 < k <= len(bank):
        raise ValueError(f"KNN k must be in 1..{len(bank)} (training samples), got {k}")

    def score(s: Split) -> np.ndarray:
        queries = _unit(np.asarray(s.features, np.float32))
        out = np.empty(len(queries))
        for start in range(0, len(queries), KNN_QUERY_CHUNK):
            block = slice(start, start + KNN_QUERY_CHUNK)
            sq = np.clip(2.0 - 2.0 * queries[block] @ bank.T, 0.0, None)
            out[block] = -np.sqrt(np.partition(sq, k - 1, axis=1)[:, k - 1])
        return out

    return score


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Score:
    """One OOD score: its fitting function, whether it assumes logits z = W h + b (ViM's origin u = -pinv(W) b)
    and its family (the groups of :data:`nclab.names.SCORE_FAMILIES`)."""

    fit: Callable[..., Scorer]
    needs_affine_logits: bool
    family: str


SCORES = {
    "msp": Score(msp, False, "logit"),
    "maxlogit": Score(maxlogit, False, "logit"),
    "energy": Score(energy, False, "logit"),
    "mahalanobis": Score(mahalanobis, False, "distance"),
    "vim": Score(vim, True, "distance"),
    "neco": Score(neco, False, "collapse"),
    "knn": Score(knn, False, "distance"),
}


def hyperparameters(method: str) -> list[str]:
    """The hyperparameters of a method: its keyword-only arguments (their defaults are the schema's)."""
    if method not in SCORES:
        raise ValueError(f"unknown OOD score {method!r}; allowed: {sorted(SCORES)}")
    return [p.name for p in inspect.signature(SCORES[method].fit).parameters.values() if p.kind is p.KEYWORD_ONLY]


def fit_score(method: str, train: Split, weight: np.ndarray, bias: np.ndarray, **hyper: object) -> Scorer:
    allowed = hyperparameters(method)
    unknown, missing = set(hyper) - set(allowed), set(allowed) - set(hyper)
    if unknown or missing:
        raise ValueError(
            f"OOD score {method!r} takes the hyperparameters {allowed}; unknown: {sorted(unknown)}, "
            f"missing: {sorted(missing)}"
        )
    return SCORES[method].fit(train, weight, bias, **hyper)


def score_applies(method: str, head: str) -> bool:
    """Whether ``method`` is the published score on a network with this classifier head: a score that assumes
    logits z = W h + b is not computed on heads whose logits are not (LDAM's normalised head, the fixed ETF)."""
    return not SCORES[method].needs_affine_logits or head in AFFINE_HEADS


def score_dump(dump: dict[str, np.ndarray], method: str, splits: list[str], **hyper: object) -> dict[str, np.ndarray]:
    """``method`` fitted on the dump's train split, on each of ``splits``; NaN everywhere where it does not
    apply to the dump's head (its cells in the tables stay empty)."""
    if not score_applies(method, str(dump["head"])):
        return {split: np.full(len(dump[f"{split}_labels"]), np.nan) for split in splits}
    train = Split(dump["train_features"], dump["train_logits"], dump["train_labels"])
    scorer = fit_score(method, train, dump["weight"], dump["bias"], **hyper)
    scores = {}
    for split in splits:
        scores[split] = scorer(Split(dump[f"{split}_features"], dump[f"{split}_logits"]))
        if not np.all(np.isfinite(scores[split])):
            raise ValueError(f"{method} gives non-finite scores on {split}")
    return scores
