"""Baseline losses of long-tailed learning (docs/methods.md, section 4), on logits z, labels y and class counts n_c.

Each loss is ``f(logits, labels, counts, progress, *, hyperparameters)`` with ``progress`` the fraction of the
epochs done before the current one. A new loss is one function, one entry in LOSSES, its display name in
:data:`nclab.names.LOSSES` (its head in :data:`nclab.plan.LOSS_HEADS` unless linear) and its name and
options (types, ranges, defaults) in the schema; a test checks that all of them agree.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor, progress: float) -> torch.Tensor:
    return F.cross_entropy(logits, labels)


def logit_adjustment(
    logits: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor, progress: float, *, tau: float
) -> torch.Tensor:
    """CE on z_c + tau log pi_c, pi the training prior (Menon et al., ICLR 2021, logit-adjusted loss)."""
    prior = counts / counts.sum()
    return F.cross_entropy(logits + tau * torch.log(prior), labels)


def balanced_softmax(logits: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor, progress: float) -> torch.Tensor:
    """CE on z_c + log n_c (Ren et al., NeurIPS 2020)."""
    return F.cross_entropy(logits + torch.log(counts), labels)


def ldam_margins(counts: torch.Tensor, max_margin: float) -> torch.Tensor:
    """Delta_c proportional to n_c^(-1/4), rescaled so that the largest is ``max_margin``."""
    margins = counts.double() ** -0.25
    return (margins * (max_margin / margins.max())).to(torch.float32)


def drw_weights(counts: torch.Tensor, beta: float) -> torch.Tensor:
    """Class-balanced weights (1 - beta) / (1 - beta^n_c), normalised to sum to C (Cui et al., CVPR 2019)."""
    weights = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts.double()))
    return (weights / weights.sum() * len(counts)).to(torch.float32)


def ldam_drw(
    logits: torch.Tensor,
    labels: torch.Tensor,
    counts: torch.Tensor,
    progress: float,
    *,
    max_margin: float,
    scale: float,
    beta: float,
    drw_start: float,
) -> torch.Tensor:
    """LDAM with deferred re-weighting (Cao et al., NeurIPS 2019).

    ``logits`` = scale * cos(h, w_c) from the normalised head; the true class loses scale * Delta_y, and from
    ``drw_start`` of the epochs on, samples are weighted by :func:`drw_weights`.
    """
    margins = ldam_margins(counts, max_margin).to(logits.device)
    adjusted = logits - scale * margins[labels, None] * F.one_hot(labels, logits.shape[1])
    weights = drw_weights(counts, beta).to(logits.device) if progress >= drw_start else None
    return F.cross_entropy(adjusted, labels, weight=weights)


def dot_regression(logits: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor, progress: float) -> torch.Tensor:
    """(1/2) mean (w*_y . h/||h|| - 1)^2 with the fixed unit-norm ETF classifier w*, whose logits are these dot
    products (Yang et al., "Inducing Neural Collapse in Imbalanced Learning", NeurIPS 2022, E_W = E_H = 1)."""
    return 0.5 * torch.mean((logits.gather(1, labels[:, None]).squeeze(1) - 1.0) ** 2)


LOSSES = {
    "ce": cross_entropy,
    "logit_adjustment": logit_adjustment,
    "balanced_softmax": balanced_softmax,
    "ldam_drw": ldam_drw,
    "etf": dot_regression,
}
