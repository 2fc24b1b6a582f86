"""Feature/classifier space alignment strategies (docs/methods.md, section 5; arXiv 2512.07844, "Space Alignment
Matters", AAAI 2026), each a plug-in on top of any baseline loss.

All three follow EMA class centres mu^_c (momentum ``longtail.alignment.momentum``, from the batch features,
without gradient). The *directions* SpA-Proj and SpA-SLERP align the classifier with are the centres as the head
compares them with its rows, normalised: centred by their mean for the linear head (z = W h + b: its bias absorbs
the global mean, and w_c aligns with mu_c - mu_G at collapse, NC3), uncentred for LDAM's normalised head
(z = s cos(h, w_c), no bias: the angle to the uncentred feature decides).

- SpA-Proj (from the authors' public code): :func:`project_gradient`, applied to the classifier's gradient.
- SpA-Reg (our reconstruction; the paper's formula was not public): :func:`alignment_penalty`, added to the loss.
- SpA-SLERP (our reconstruction): :func:`slerp_towards`, applied to the classifier after each step.

STRATEGIES maps a name to the hooks of a strategy, each taking the strategy's options keyword-only. A new strategy
is one function, one record here, its display name in :data:`nclab.names.STRATEGIES` and its name and options
(types, ranges, defaults) in the schema; a test checks that all of them agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F


def batch_class_means(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean feature of each class present in the batch (rows in class order) and the (C,) presence mask."""
    counts = torch.bincount(labels, minlength=num_classes)
    sums = torch.zeros(num_classes, features.shape[1], device=features.device, dtype=features.dtype)
    sums = sums.index_add(0, labels, features)
    present = counts > 0
    return sums[present] / counts[present, None], present


class CentreEMA:
    """Exponential moving averages of the class centres mu^_c (a class's first batch sets its centre); ``centred``
    whether :meth:`directions` centres them (the head has a bias, above)."""

    def __init__(
        self, num_classes: int, dim: int, momentum: float, device: torch.device | str = "cpu", centred: bool = True
    ) -> None:
        self.momentum, self.centred = momentum, centred
        self.centres = torch.zeros(num_classes, dim, device=device)
        self.seen = torch.zeros(num_classes, dtype=torch.bool, device=device)

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        batch_means, present = batch_class_means(features.detach().float(), labels, len(self.centres))
        old = self.centres[present]
        blended = self.momentum * old + (1 - self.momentum) * batch_means
        self.centres[present] = torch.where(self.seen[present, None], blended, batch_means)
        self.seen |= present

    def global_centre(self) -> torch.Tensor:
        """mu^_G: the mean of the centres seen so far (the mean-of-class-means convention)."""
        return self.centres[self.seen].mean(0)

    def directions(self) -> torch.Tensor:
        """(C, d) unit vectors of mu^_c - mu^_G, or of mu^_c where not ``centred`` (zero rows for classes not seen
        yet)."""
        directions = F.normalize(self.centres - self.global_centre() if self.centred else self.centres, dim=1)
        return directions * self.seen[:, None]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"centres": self.centres.clone(), "seen": self.seen.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.centres.copy_(state["centres"])
        self.seen.copy_(state["seen"])


def alignment_penalty(
    features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, centres: CentreEMA, *, strength: float
) -> torch.Tensor:
    """SpA-Reg: lambda * mean over the batch's classes of 1 - cos(h_bar_c - mu^_G, w_c), h_bar_c with gradient."""
    batch_means, present = batch_class_means(features, labels, len(weight))
    cos = F.cosine_similarity(batch_means - centres.global_centre(), weight[present], dim=1)
    return strength * torch.mean(1.0 - cos)


@torch.no_grad()
def project_gradient(grad: torch.Tensor, weight: torch.Tensor, centres: CentreEMA, *, gamma: float) -> torch.Tensor:
    """SpA-Proj on the classifier's gradient g (rows g_c of w_c).

    g_t = g - (g.w^)w^ (tangent part); delta = normalise(mu^_c - (mu^_c.w^)w^) (towards the centre); if
    g_t.delta > 0 (a descent step would move w_c away from the centre) that component is removed; the result
    is (1 - gamma) g_t + gamma g. Rows of classes not seen yet are left unchanged.
    """
    unit_w = F.normalize(weight, dim=1)
    target = centres.directions()
    tangent = grad - (grad * unit_w).sum(1, keepdim=True) * unit_w
    delta = F.normalize(target - (target * unit_w).sum(1, keepdim=True) * unit_w, dim=1)
    away = (tangent * delta).sum(1, keepdim=True).clamp(min=0)
    tangent = tangent - away * delta
    projected = (1 - gamma) * tangent + gamma * grad
    return torch.where(centres.seen[:, None], projected, grad)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between unit rows a and b (a where they coincide)."""
    cos = (a * b).sum(1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    safe = sin.abs() > 1e-6
    mixed = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.where(safe, sin, torch.ones_like(sin))
    return torch.where(safe, mixed, a)


@torch.no_grad()
def slerp_towards(weight: torch.Tensor, centres: CentreEMA, *, t: float) -> torch.Tensor:
    """SpA-SLERP: w_c <- ||w_c|| slerp(w^_c, direction of mu^_c, t), norms kept; unseen classes unchanged."""
    norms = weight.norm(dim=1, keepdim=True)
    rotated = norms * slerp(weight / norms, centres.directions(), t)
    return torch.where(centres.seen[:, None], rotated, weight)


@dataclass(frozen=True)
class Strategy:
    penalty: Callable[..., torch.Tensor] | None = None  # added to the loss
    on_gradient: Callable[..., torch.Tensor] | None = None  # new classifier gradient, after backward
    on_step: Callable[..., torch.Tensor] | None = None  # new classifier weight, after the optimiser step


STRATEGIES = {
    "none": Strategy(),
    "reg": Strategy(penalty=alignment_penalty),
    "proj": Strategy(on_gradient=project_gradient),
    "slerp": Strategy(on_step=slerp_towards),
}
