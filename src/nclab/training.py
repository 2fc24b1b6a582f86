"""Training loop of the seed report: SGD + cross-entropy, batched on-device augmentation, two schedules.

Schedules (seed report, section 2): ``standard`` = cosine annealing over all epochs; ``extended`` =
MultiStepLR dividing the learning rate by 10 at given fractions of the epochs (300 and 450 of 600).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from nclab.data import ImageSet, channel_stats


@dataclass(frozen=True)
class Recipe:
    epochs: int
    scheduler: str  # "cosine" or "multistep"
    milestones: tuple[float, ...]  # fractions of the epochs (multistep only)
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    crop_padding: int
    flip: bool


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite."""


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe) -> torch.optim.lr_scheduler.LRScheduler:
    if recipe.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs)
    if recipe.scheduler == "multistep":
        milestones = [round(f * recipe.epochs) for f in recipe.milestones]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    raise ValueError(f"unknown scheduler {recipe.scheduler!r}; allowed: ['cosine', 'multistep']")


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float, scaled to [0, 1] then standardised per channel."""
    return (images.float() / 255.0 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def augment(images: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, on a whole uint8 batch at once."""
    n, _, h, w = images.shape
    if padding:
        padded = nn.functional.pad(images, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).view(n, 1, h, 1)
        cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).view(n, 1, 1, w)
        batch_idx = torch.arange(n).view(n, 1, 1, 1)
        chan_idx = torch.arange(images.shape[1]).view(1, -1, 1, 1)
        images = padded[batch_idx, chan_idx, rows, cols]
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        images = torch.where(mask.view(n, 1, 1, 1), images.flip(3), images)
    return images


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor,
             std: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` in eval mode."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(images), batch_size):
        x = normalise(images[start : start + batch_size], mean, std)
        y = labels[start : start + batch_size]
        logits = model(x)
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    return loss_sum / len(images), correct / len(images)


def train(model: nn.Module, train_set: ImageSet, test_set: ImageSet, recipe: Recipe, seed: int,
          checkpoint_epochs: Sequence[int], on_checkpoint: Callable[[int, dict[str, torch.Tensor]], None],
          on_epoch: Callable[[EpochStats], None] = lambda stats: None) -> list[EpochStats]:
    """Train ``model`` in place; call ``on_checkpoint(epoch, state_dict)`` at each listed epoch."""
    generator = torch.Generator().manual_seed(seed)
    mean, std = (torch.tensor(v, dtype=torch.float32) for v in channel_stats(train_set.images))
    x_train, y_train = torch.from_numpy(train_set.images), torch.from_numpy(train_set.labels)
    x_test, y_test = torch.from_numpy(test_set.images), torch.from_numpy(test_set.labels)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    scheduler = make_scheduler(optimizer, recipe)
    history = []
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        lr = optimizer.param_groups[0]["lr"]
        order = torch.randperm(len(x_train), generator=generator)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(order), recipe.batch_size):
            idx = order[start : start + recipe.batch_size]
            x = normalise(augment(x_train[idx], recipe.crop_padding, recipe.flip, generator), mean, std)
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y_train[idx])
            if not torch.isfinite(loss):
                raise DivergenceError(f"training diverged at epoch {epoch}: loss = {loss.item()}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == y_train[idx]).sum().item()
        scheduler.step()
        test_loss, test_acc = evaluate(model, x_test, y_test, mean, std, 4 * recipe.batch_size)
        stats = EpochStats(epoch, lr, loss_sum / len(order), correct / len(order), test_loss, test_acc)
        history.append(stats)
        on_epoch(stats)
        if epoch in checkpoint_epochs:
            on_checkpoint(epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
    return history


def checkpoint_schedule(epochs: int, requested: Sequence[int]) -> list[int]:
    """Sorted checkpoint epochs, always including the last one."""
    bad = [e for e in requested if not 1 <= e <= epochs]
    if bad:
        raise ValueError(f"checkpoint epochs {bad} are outside 1..{epochs}")
    return sorted(set(requested) | {epochs})
