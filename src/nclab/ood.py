"""Post-hoc OOD detectors (docs/methods.md, section 2). Every score: higher = more in-distribution.

Each detector is one function ``fit(train, weight, bias, *, hyperparameters) -> scorer`` fitted on ID training
features only; the scorer maps a :class:`Split` to one score per sample. Add a detector by writing such a
function, one :class:`Score` record in :data:`SCORES`, its schema entry (its name in ``ood.methods``, its
hyperparameters' types, ranges and defaults under ``ood.hyperparameters``) and its display name and citation
in :mod:`nclab.names`; tests check that the names agree.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import logsumexp, softmax, xlogy

from nclab.plan import AFFINE_HEADS


@dataclass(frozen=True)
class Split:
    features: np.ndarray  # (N, d) penultimate features h
    logits: np.ndarray  # (N, C) logits z
    labels: np.ndarray | None = None  # training labels, where a method needs them


Scorer = Callable[[Split], np.ndarray]


def _probabilities(logits: np.ndarray) -> np.ndarray:
    return softmax(np.asarray(logits, np.float64), axis=1)


def _energy(logits: np.ndarray) -> np.ndarray:
    return logsumexp(np.asarray(logits, np.float64), axis=1)


def msp(train: Split, weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """Maximum softmax probability (Hendrycks & Gimpel, ICLR 2017)."""
    return lambda s: _probabilities(s.logits).max(axis=1)


def maxlogit(train: Split, weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """Maximum logit (Hendrycks et al., ICML 2022)."""
    return lambda s: np.asarray(s.logits, np.float64).max(axis=1)


def energy(train: Split, weight: np.ndarray, bias: np.ndarray, *, temperature: float) -> Scorer:
    """Negative free energy T * logsumexp(z / T) (Liu et al., NeurIPS 2020)."""
    return lambda s: temperature * logsumexp(np.asarray(s.logits, np.float64) / temperature, axis=1)


def entropy(train: Split, weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """Negative Shannon entropy sum_c p_c log p_c of p = softmax(z)."""
    return lambda s: np.sum(xlogy(p := _probabilities(s.logits), p), axis=1)


def gen(train: Split, weight: np.ndarray, bias: np.ndarray, *, gamma: float, top_m: int) -> Scorer:
    """Generalised entropy -sum over the ``top_m`` largest p_c of p_c^gamma (1 - p_c)^gamma (Liu et al., CVPR
    2023)."""
    classes = np.shape(train.logits)[1]
    if not 0 < top_m <= classes:
        raise ValueError(f"GEN top_m must be in 1..{classes} (the class count), got {top_m}")

    def score(s: Split) -> np.ndarray:
        p = np.sort(_probabilities(s.logits), axis=1)[:, -top_m:]
        return -np.sum(p**gamma * (1.0 - p) ** gamma, axis=1)

    return score


def kl_matching(train: Split, weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """-min_c KL(p || d_c), d_c the mean softmax of the training samples predicted as c, over the classes some
    training sample is predicted as (Hendrycks et al., ICML 2022)."""
    p_train = _probabilities(train.logits)
    predicted = p_train.argmax(axis=1)
    templates = np.stack([p_train[predicted == c].mean(axis=0) for c in np.unique(predicted)])
    log_templates = np.log(np.maximum(templates, np.finfo(np.float64).tiny))

    def score(s: Split) -> np.ndarray:
        p = _probabilities(s.logits)
        divergences = np.sum(xlogy(p, p), axis=1)[:, None] - p @ log_templates.T
        return -divergences.min(axis=1)

    return score


def _gaussian_distances(h: np.ndarray, labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """x -> (N, C) squared Mahalanobis distances to the class means of ``h`` under their tied MLE covariance
    (pseudo-inverse), float64."""
    classes = np.unique(labels)
    means = np.stack([h[labels == c].mean(axis=0) for c in classes])
    residuals = h - means[np.searchsorted(classes, labels)]
    precision = np.linalg.pinv(residuals.T @ residuals / len(h), hermitian=True)
    mean_terms = np.einsum("cd,de,ce->c", means, precision, means)

    def distances(x: np.ndarray) -> np.ndarray:
        xp = x @ precision
        return np.sum(xp * x, axis=1)[:, None] - 2 * xp @ means.T + mean_terms[None, :]

    return distances


def mahalanobis(train: Split, weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """max_c -(h - mu_c)^T P (h - mu_c), tied MLE covariance, P its pseudo-inverse (Lee et al., NeurIPS 2018)."""
    distances = _gaussian_distances(np.asarray(train.features, np.float64), train.labels)
    return lambda s: -distances(np.asarray(s.features, np.float64)).min(axis=1)


def rmds(train: Split, weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """Relative Mahalanobis distance max_c [MD_0(h) - MD_c(h)] (Ren et al., 2021): MD_c as in
    :func:`mahalanobis`, MD_0 to one Gaussian (mean and MLE covariance) of all training features."""
    h = np.asarray(train.features, np.float64)
    distances = _gaussian_distances(h, train.labels)
    background = _gaussian_distances(h, np.zeros(len(h), int))
    return lambda s: background(x := np.asarray(s.features, np.float64))[:, 0] - distances(x).min(axis=1)


def _residual_space(h: np.ndarray, weight: np.ndarray, bias: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """ViM's origin u = -pinv(W) b and the eigenvectors R of the uncentred covariance of h - u beyond the top
    ``dim`` (Wang et al., CVPR 2022)."""
    if not 0 < dim < h.shape[1]:
        raise ValueError(f"ViM dim must be in 1..{h.shape[1] - 1} (feature dimension {h.shape[1]}), got {dim}")
    origin = -np.linalg.pinv(np.asarray(weight, np.float64)) @ np.asarray(bias, np.float64)
    centred = h - origin
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / len(h))
    return origin, eigenvectors[:, np.argsort(eigenvalues)[::-1][dim:]]


def vim(train: Split, weight: np.ndarray, bias: np.ndarray, *, dim: int) -> Scorer:
    """Virtual-logit matching (Wang et al., CVPR 2022): logsumexp(z) - alpha ||(h - u) R||, R as in
    :func:`_residual_space`, alpha = mean_train max_c z_c / mean_train ||(h - u) R||."""
    h = np.asarray(train.features, np.float64)
    origin, residual_space = _residual_space(h, weight, bias, dim)
    residual_norms = np.linalg.norm((h - origin) @ residual_space, axis=1)
    alpha = np.asarray(train.logits, np.float64).max(axis=1).mean() / residual_norms.mean()

    def score(s: Split) -> np.ndarray:
        virtual_logit = alpha * np.linalg.norm((np.asarray(s.features, np.float64) - origin) @ residual_space, axis=1)
        return _energy(s.logits) - virtual_logit

    return score


def vim_residual(train: Split, weight: np.ndarray, bias: np.ndarray, *, dim: int) -> Scorer:
    """ViM's residual alone, -||(h - u) R|| (Wang et al., CVPR 2022; OpenOOD's "Residual")."""
    origin, residual_space = _residual_space(np.asarray(train.features, np.float64), weight, bias, dim)
    return lambda s: -np.linalg.norm((np.asarray(s.features, np.float64) - origin) @ residual_space, axis=1)


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


QUERY_CHUNK = 1024  # queries per similarity block (KNN, NNGuide): bounds memory at CHUNK x N_train floats


def _top_similarities(queries: np.ndarray, bank: np.ndarray, k: int) -> np.ndarray:
    """(N, k) the k largest inner products of each query with the bank rows (unordered), by query blocks."""
    if not 0 < k <= len(bank):
        raise ValueError(f"k must be in 1..{len(bank)} (training samples), got {k}")
    out = np.empty((len(queries), k), np.float32)
    for start in range(0, len(queries), QUERY_CHUNK):
        block = slice(start, start + QUERY_CHUNK)
        similarities = queries[block] @ bank.T
        out[block] = np.partition(similarities, len(bank) - k, axis=1)[:, len(bank) - k :]
    return out


def knn(train: Split, weight: np.ndarray, bias: np.ndarray, *, k: int) -> Scorer:
    """-||h^ - h^_(k)||, the distance to the k-th nearest normalised training feature (Sun et al., ICML 2022)."""
    bank = _unit(np.asarray(train.features, np.float32))

    def score(s: Split) -> np.ndarray:
        kth_similarity = _top_similarities(_unit(np.asarray(s.features, np.float32)), bank, k).min(axis=1)
        return -np.sqrt(np.clip(2.0 - 2.0 * kth_similarity.astype(np.float64), 0.0, None))

    return score


def nnguide(train: Split, weight: np.ndarray, bias: np.ndarray, *, k: int) -> Scorer:
    """Nearest-neighbour guidance (Park et al., ICCV 2023): energy(z) times the mean of the k largest inner
    products of h^ with the bank of training h^_j scaled by their energies; the whole training split is the bank."""
    bank = _unit(np.asarray(train.features, np.float32)) * _energy(train.logits).astype(np.float32)[:, None]

    def score(s: Split) -> np.ndarray:
        guidance = _top_similarities(_unit(np.asarray(s.features, np.float32)), bank, k).mean(axis=1)
        return _energy(s.logits) * guidance.astype(np.float64)

    return score


def she(train: Split, weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """Simplified Hopfield energy <h, S_yhat> (Zhang et al., ICLR 2023): S_c the mean training feature of the
    correctly classified samples of class c (of all its samples where none is correct)."""
    h = np.asarray(train.features, np.float64)
    correct = np.asarray(train.logits).argmax(axis=1) == train.labels
    patterns = np.stack(
        [
            h[(train.labels == c) & correct].mean(axis=0)
            if np.any((train.labels == c) & correct)
            else h[train.labels == c].mean(axis=0)
            for c in range(np.shape(train.logits)[1])
        ]
    )
    return lambda s: np.sum(np.asarray(s.features, np.float64) * patterns[np.argmax(s.logits, axis=1)], axis=1)


def gradnorm(train: Split, weight: np.ndarray, bias: np.ndarray, *, temperature: float) -> Scorer:
    """GradNorm on the last layer in closed form (Huang et al., NeurIPS 2021): the L1 norm of the gradient of
    KL(uniform || softmax(z / T)) with respect to W, ||softmax(z / T) - 1/C||_1 ||h||_1 / T."""

    def score(s: Split) -> np.ndarray:
        p = softmax(np.asarray(s.logits, np.float64) / temperature, axis=1)
        h = np.asarray(s.features, np.float64)
        return np.abs(p - 1.0 / p.shape[1]).sum(axis=1) * np.abs(h).sum(axis=1) / temperature

    return score


def fdbd(train: Split, weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """Feature distance to the decision boundaries (Liu & Qin, ICML 2024): the mean over c != yhat of
    |z_yhat - z_c| / ||w_yhat - w_c||, divided by ||h - mu||, mu the mean training feature."""
    w = np.asarray(weight, np.float64)
    mean = np.asarray(train.features, np.float64).mean(axis=0)
    boundary_norms = np.linalg.norm(w[:, None, :] - w[None, :, :], axis=2)
    np.fill_diagonal(boundary_norms, 1.0)  # the predicted class's own term is 0 / 1

    def score(s: Split) -> np.ndarray:
        z = np.asarray(s.logits, np.float64)
        predicted = z.argmax(axis=1)
        gaps = np.abs(z - z[np.arange(len(z)), predicted][:, None]) / boundary_norms[predicted]
        distances = np.linalg.norm(np.asarray(s.features, np.float64) - mean, axis=1)
        return gaps.sum(axis=1) / (z.shape[1] - 1) / distances

    return score


def nci(train: Split, weight: np.ndarray, bias: np.ndarray, *, alpha: float) -> Scorer:
    """Neural-Collapse-inspired detector (Liu & Qin, CVPR 2025, as in OpenOOD v1.5):
    w_yhat . (h - mu) / ||h - mu|| + alpha ||h||_1, mu the mean training feature, W unnormalised."""
    w = np.asarray(weight, np.float64)
    mean = np.asarray(train.features, np.float64).mean(axis=0)

    def score(s: Split) -> np.ndarray:
        h = np.asarray(s.features, np.float64)
        centred = h - mean
        proximity = np.sum(w[np.argmax(s.logits, axis=1)] * centred, axis=1) / np.linalg.norm(centred, axis=1)
        return proximity + alpha * np.abs(h).sum(axis=1)

    return score


def _kept(dim: int, percentile: float) -> int:
    """Entries an activation-shaping method keeps per sample: the largest (100 - percentile) %, at least one."""
    kept = dim - round(dim * percentile / 100)
    if kept < 1:
        raise ValueError(f"percentile {percentile} keeps no entry of a {dim}-dimensional feature")
    return kept


def _largest(h: np.ndarray, kept: int) -> np.ndarray:
    """Mask of the ``kept`` largest entries of each row of ``h``."""
    mask = np.zeros(h.shape, bool)
    np.put_along_axis(mask, np.argpartition(-h, kept - 1, axis=1)[:, :kept], True, axis=1)
    return mask


def _sum_ratio(h: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """sum(h) / sum(kept entries) per row, the exponent of ASH-S and SCALE; 0 where the kept entries sum to 0
    (an all-zero post-ReLU feature, which a dead network gives), so that such a row keeps its zero feature
    instead of 0 * exp(0 / 0) = NaN."""
    total, top = h.sum(axis=1, keepdims=True), kept.sum(axis=1, keepdims=True)
    return np.divide(total, top, out=np.zeros_like(total), where=top != 0)


def _shaped_energy(shape: Callable[[np.ndarray], np.ndarray], weight: np.ndarray, bias: np.ndarray) -> Scorer:
    """energy(W shape(h) + b): the score of every activation-shaping method, on the pooled features."""
    w, b = np.asarray(weight, np.float64), np.asarray(bias, np.float64)
    return lambda s: _energy(shape(np.asarray(s.features, np.float64)) @ w.T + b)


def react(train: Split, weight: np.ndarray, bias: np.ndarray, *, percentile: float) -> Scorer:
    """ReAct (Sun et al., NeurIPS 2021): energy of the logits of min(h, tau), tau the ``percentile``-th
    percentile of every entry of the training features."""
    threshold = np.percentile(np.asarray(train.features, np.float64), percentile)
    return _shaped_energy(lambda h: np.minimum(h, threshold), weight, bias)


def ash_p(train: Split, weight: np.ndarray, bias: np.ndarray, *, percentile: float) -> Scorer:
    """ASH-P (Djurisic et al., ICLR 2023): per sample, zero all but the largest (100 - percentile) % entries."""
    kept = _kept(np.shape(train.features)[1], percentile)
    return _shaped_energy(lambda h: np.where(_largest(h, kept), h, 0.0), weight, bias)


def ash_b(train: Split, weight: np.ndarray, bias: np.ndarray, *, percentile: float) -> Scorer:
    """ASH-B (Djurisic et al., ICLR 2023): per sample, the kept entries (as ASH-P) all set to sum(h) / kept,
    the others to zero."""
    kept = _kept(np.shape(train.features)[1], percentile)
    return _shaped_energy(lambda h: np.where(_largest(h, kept), h.sum(axis=1, keepdims=True) / kept, 0.0), weight, bias)


def ash_s(train: Split, weight: np.ndarray, bias: np.ndarray, *, percentile: float) -> Scorer:
    """ASH-S (Djurisic et al., ICLR 2023): ASH-P's pruned h times exp(sum(h) / sum(pruned h))."""
    kept = _kept(np.shape(train.features)[1], percentile)

    def shape(h: np.ndarray) -> np.ndarray:
        pruned = np.where(_largest(h, kept), h, 0.0)
        return pruned * np.exp(_sum_ratio(h, pruned))

    return _shaped_energy(shape, weight, bias)


def scale(train: Split, weight: np.ndarray, bias: np.ndarray, *, percentile: float) -> Scorer:
    """SCALE (Xu et al., ICLR 2024): the whole h times exp(sum(h) / sum of its kept entries, as ASH-P's)."""
    kept = _kept(np.shape(train.features)[1], percentile)

    def shape(h: np.ndarray) -> np.ndarray:
        return h * np.exp(_sum_ratio(h, np.where(_largest(h, kept), h, 0.0)))

    return _shaped_energy(shape, weight, bias)


def dice(train: Split, weight: np.ndarray, bias: np.ndarray, *, percentile: float) -> Scorer:
    """DICE (Sun & Li, ECCV 2022): energy with W sparsified to its entries whose contribution
    mean_train(h)_j w_cj exceeds the ``percentile``-th percentile of all contributions."""
    w = np.asarray(weight, np.float64)
    contribution = np.asarray(train.features, np.float64).mean(axis=0)[None, :] * w
    masked = np.where(contribution > np.percentile(contribution, percentile), w, 0.0)
    return _shaped_energy(lambda h: h, masked, bias)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Score:
    """One OOD detector: its fitting function, whether it assumes logits z = W h + b (ViM's origin
    u = -pinv(W) b, a gradient or logits recomputed from shaped features) and its family (the groups of
    :data:`nclab.names.SCORE_FAMILIES`)."""

    fit: Callable[..., Scorer]
    needs_affine_logits: bool
    family: str


SCORES = {  # the seed report's scores and KNN first, then the further detectors by family
    "msp": Score(msp, False, "logit"),
    "maxlogit": Score(maxlogit, False, "logit"),
    "energy": Score(energy, False, "logit"),
    "mahalanobis": Score(mahalanobis, False, "feature"),
    "vim": Score(vim, True, "feature"),
    "neco": Score(neco, False, "collapse"),
    "knn": Score(knn, False, "feature"),
    "entropy": Score(entropy, False, "logit"),
    "gen": Score(gen, False, "logit"),
    "kl_matching": Score(kl_matching, False, "logit"),
    "rmds": Score(rmds, False, "feature"),
    "she": Score(she, False, "feature"),
    "nnguide": Score(nnguide, False, "feature"),
    "vim_residual": Score(vim_residual, True, "feature"),
    "gradnorm": Score(gradnorm, True, "feature"),
    "react": Score(react, True, "shaping"),
    "ash_b": Score(ash_b, True, "shaping"),
    "ash_p": Score(ash_p, True, "shaping"),
    "ash_s": Score(ash_s, True, "shaping"),
    "scale": Score(scale, True, "shaping"),
    "dice": Score(dice, True, "shaping"),
    "fdbd": Score(fdbd, True, "collapse"),
    "nci": Score(nci, False, "collapse"),
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


class NonFiniteScoresError(ValueError):
    """A detector gave NaN or infinite scores (an early checkpoint's degenerate features, e.g. all zero)."""


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
            raise NonFiniteScoresError(f"{method} gives non-finite scores on {split}")
    return scores
