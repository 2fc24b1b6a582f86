"""Checkpoints and the feature/logit dumps every metric is computed from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
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


@torch.no_grad()
def extract(
    model: nn.Module, images: np.ndarray, mean: torch.Tensor, std: torch.Tensor, batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features h and logits z of uint8 images in fp32, network in eval mode, no augmentation.

    Runs on the device that holds ``model``; the arrays come back to the CPU.
    """
    model.eval()
    device = next(model.parameters()).device
    mean, std = mean.to(device), std.to(device)
    features, logits = [], []
    for start in range(0, len(images), batch_size):
        x = normalise(torch.from_numpy(images[start : start + batch_size]).to(device), mean, std)
        h = model.features(x)
        features.append(h.cpu().numpy())
        logits.append(model.fc(h).cpu().numpy())
    return np.concatenate(features), np.concatenate(logits)
