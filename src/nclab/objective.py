"""A training objective: one baseline loss (:mod:`nclab.losses`) composed with one alignment strategy
(:mod:`nclab.alignment`), with the training-set class counts they need."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from nclab.alignment import STRATEGIES, CentreEMA
from nclab.losses import LOSSES
from nclab.plan import AFFINE_HEADS, LOSS_HEADS, strategy_applies


class Objective:
    def __init__(
        self,
        loss: str,
        strategy: str,
        counts: torch.Tensor,
        feature_dim: int,
        loss_options: Mapping[str, float] | None = None,
        strategy_options: Mapping[str, float] | None = None,
        momentum: float | None = None,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; allowed: {sorted(LOSSES)}")
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown alignment strategy {strategy!r}; allowed: {sorted(STRATEGIES)}")
        self.strategy = STRATEGIES[strategy]
        if not strategy_applies(loss, strategy):
            raise ValueError(f"strategy {strategy!r} moves the classifier, which loss {loss!r} keeps fixed")
        self.loss_fn, self.loss_options = LOSSES[loss], dict(loss_options or {})
        self.strategy_options = dict(strategy_options or {})
        if (strategy != "none") != (momentum is not None):
            raise ValueError(
                f"momentum is the EMA of the class centres a strategy follows: give it for a strategy "
                f"only (strategy {strategy!r})"
            )
        self.counts = counts.float()
        centred = LOSS_HEADS.get(loss, "linear") in AFFINE_HEADS  # the head has a bias (nclab.alignment)
        self.centres = (
            CentreEMA(len(counts), feature_dim, momentum, counts.device, centred) if strategy != "none" else None
        )

    def __call__(
        self, logits: torch.Tensor, features: torch.Tensor, labels: torch.Tensor, progress: float, head: nn.Module
    ) -> torch.Tensor:
        """The loss of a batch; also advances the EMA centres with the batch's features."""
        loss = self.loss_fn(logits, labels, self.counts, progress, **self.loss_options)
        if self.centres is not None:
            self.centres.update(features, labels)
            if self.strategy.penalty:
                loss = loss + self.strategy.penalty(
                    features, labels, head.weight, self.centres, **self.strategy_options
                )
        return loss

    def after_backward(self, head: nn.Module) -> None:
        if self.strategy.on_gradient and head.weight.grad is not None:
            head.weight.grad.copy_(
                self.strategy.on_gradient(head.weight.grad, head.weight, self.centres, **self.strategy_options)
            )

    def after_step(self, head: nn.Module) -> None:
        if self.strategy.on_step:
            with torch.no_grad():
                head.weight.copy_(self.strategy.on_step(head.weight, self.centres, **self.strategy_options))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.centres.state_dict() if self.centres is not None else {}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if self.centres is not None:
            self.centres.load_state_dict(state)
