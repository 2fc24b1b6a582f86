"""Long-tailed training sets and shot groups (docs/methods.md, section 4).

Exponential profile (Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
NeurIPS 2019): n_c = floor(n_max * IR^(-c/(C-1))); step profile: the first floor(C/2) classes keep n_max, the
others floor(n_max / IR). Class 0 is the head. Each class keeps a random subset of its images, drawn by one
generator seeded with the subset's seed, so the subset is a function of (dataset, profile, IR, seed).
The ``given`` profile keeps a training set that is long-tailed already (ImageNet-LT) as it is, after checking
its imbalance ratio against the configured one.
"""

from __future__ import annotations

import math

import numpy as np

from nclab.data import ImageSet

PROFILES = ("exponential", "step", "given")
GROUPS = ("many", "medium", "few")


def class_counts(n_max: int, num_classes: int, ratio: float, profile: str) -> np.ndarray:
    """Images per class of a long-tailed profile with imbalance ratio ``ratio`` = n_max / n_min."""
    if ratio < 1:
        raise ValueError(f"imbalance ratio {ratio} must be >= 1 (n_max / n_min)")
    c = np.arange(num_classes)
    if profile == "exponential":
        counts = [int(n_max * (1.0 / ratio) ** (k / (num_classes - 1))) for k in c]
    elif profile == "step":
        counts = [n_max if k < num_classes // 2 else int(n_max / ratio) for k in c]
    else:
        raise ValueError(f"unknown long-tail profile {profile!r}; allowed: ['exponential', 'step']")
    counts = np.asarray(counts, dtype=np.int64)
    if counts.min() < 1:
        raise ValueError(f"imbalance ratio {ratio} leaves a class without images (n_max = {n_max})")
    return counts


def longtail_subset(
    train: ImageSet, num_classes: int, ratio: float, profile: str, seed: int
) -> tuple[ImageSet, np.ndarray]:
    """The long-tailed subset of a (near-)balanced training set and the indices it keeps (sorted).

    n_max is the size of the smallest class of ``train``, so every class can supply its quota.
    """
    available = np.bincount(train.labels, minlength=num_classes)
    if profile == "given":
        measured = available.max() / max(available.min(), 1)
        if available.min() < 1 or not math.isclose(measured, ratio, rel_tol=1e-3):
            raise ValueError(
                f"longtail.ratios: profile 'given' keeps the training set as it is, whose imbalance "
                f"ratio is {available.max()}/{available.min()} = {measured:g}, not {ratio:g}"
            )
        return train, np.arange(len(train.labels))
    counts = class_counts(int(available.min()), num_classes, ratio, profile)
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(train.labels == c))[:n] for c, n in enumerate(counts)]
    indices = np.sort(np.concatenate(keep))
    return ImageSet(train.images[indices], train.labels[indices]), indices


def shot_groups(counts: np.ndarray, many: int, few: int) -> np.ndarray:
    """'many' (n > many), 'few' (n < few) or 'medium' per class; CIFAR/ImageNet-LT use many=100, few=20."""
    counts = np.asarray(counts)
    return np.where(counts > many, "many", np.where(counts < few, "few", "medium"))
