"""Checkpoints and the feature/logit dumps every metric is computed from."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nclab.io import atomic_path
from nclab.training import normalise


def save_checkpoint(
    path: str | Path, epoch: int, state_dict: dict[str, torch.Tensor], mean: np.ndarray, std: np.ndarray
) -> None:
    """Weights and input normalisation, as plain tensors (loadable with ``weights_only=True``)."""
    payload = {
        "epoch": epoch,
        "state_dict": state_dict,
        "mean": torch.as_tensor(mean, dtype=torch.float32),
        "std": torch.as_tensor(std, dtype=torch.float32),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ValueError(f"cannot read checkpoint {path}: {err}") from err


def pool(output: torch.Tensor, grid: int) -> torch.Tensor:
    """A layer's output as one vector per sample: feature maps (N, C, H, W) average-pooled to at most ``grid`` x
    ``grid`` (adaptive pooling; a smaller map keeps its size) and flattened channel-major; vectors unchanged."""
    if output.ndim == 2:
        return output
    size = (min(grid, output.shape[2]), min(grid, output.shape[3]))
    return F.adaptive_avg_pool2d(output, size).flatten(1)


def pooled(output: torch.Tensor, grid: int) -> np.ndarray:
    """:func:`pool`'s vectors as a float32 array on the CPU."""
    return pool(output, grid).float().cpu().numpy()


@contextmanager
def pooled_outputs(
    modules: Mapping[str, nn.Module], grid: int, check: Callable[[str, object], None] | None = None
) -> Iterator[dict[str, list[np.ndarray]]]:
    """Forward hooks on ``modules`` (by name) that append each output, :func:`pooled`, to that name's list (one
    array per batch); removed on exit. ``check(name, output)``, if given, vets an output first."""
    captured: dict[str, list[np.ndarray]] = {name: [] for name in modules}

    def hook(name: str) -> Callable[[nn.Module, tuple, object], None]:
        def capture(module: nn.Module, inputs: tuple, output: object) -> None:
            if check is not None:
                check(name, output)
            captured[name].append(pooled(output, grid))

        return capture

    handles = [module.register_forward_hook(hook(name)) for name, module in modules.items()]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def extract_layers(
    model: nn.Module,
    images: np.ndarray,
    mean: torch.Tensor,
    std: torch.Tensor,
    modules: Mapping[str, nn.Module],
    grid: int,
    batch_size: int = 512,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Penultimate features h, logits z and the outputs of ``modules`` (by name, :func:`pooled_outputs`) of uint8
    images, in one forward pass in fp32, network in eval mode, no augmentation.

    Runs on the device that holds ``model``; the arrays come back to the CPU.
    """
    model.eval()
    device = next(model.parameters()).device
    mean, std = mean.to(device), std.to(device)
    features, logits = [], []
    with pooled_outputs(modules, grid) as captured:
        for start in range(0, len(images), batch_size):
            x = normalise(torch.from_numpy(images[start : start + batch_size]).to(device), mean, std)
            h = model.features(x)
            features.append(h.cpu().numpy())
            logits.append(model.fc(h).cpu().numpy())
    layers = {name: np.concatenate(parts) for name, parts in captured.items()}
    return np.concatenate(features), np.concatenate(logits), layers


def extract(
    model: nn.Module, images: np.ndarray, mean: torch.Tensor, std: torch.Tensor, batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features h and logits z of uint8 images (:func:`extract_layers` without layers)."""
    features, logits, _ = extract_layers(model, images, mean, std, {}, 1, batch_size)
    return features, logits
