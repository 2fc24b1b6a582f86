"""Checkpoints made outside nclab, as a researcher's own code saves them, for the tests of nclab.external and of
the external study: torchvision ResNet-18s (random, and trained a few steps on synthetic CIFAR-shaped data) and
an nclab checkpoint."""

from pathlib import Path

import torch

from nclab.features import save_checkpoint
from nclab.models import build_model
from nclab.torchvision_compat import import_torchvision

CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
TV = {"architecture": "resnet18", "num_classes": 10, "image_size": 32, "mean": CIFAR_MEAN, "std": CIFAR_STD}
NCLAB = {**TV, "architecture": "nclab.resnet18", "width": 4}


def torchvision_resnet18(seed: int = 0, steps: int = 0) -> torch.nn.Module:
    """A torchvision ResNet-18 for 10 classes, random (seed) or trained ``steps`` SGD steps on random images."""
    torch.manual_seed(seed)
    model = import_torchvision().models.resnet18(num_classes=10)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(steps):
        images, labels = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimiser.step()
    return model.eval()


def save_torchvision_checkpoints(folder: Path) -> list[Path]:
    """Two epochs of one torchvision model: a bare state dict, then a DataParallel-style {"model": ...} file."""
    folder.mkdir(parents=True, exist_ok=True)
    first, second = folder / "tv_epoch1.pt", folder / "tv_epoch2.pt"
    torch.save(torchvision_resnet18(steps=0).state_dict(), first)
    state = {f"module.{k}": v for k, v in torchvision_resnet18(steps=3).state_dict().items()}
    torch.save({"model": state, "epoch": 2}, second)
    return [first, second]


def save_nclab_checkpoint(path: Path, in_channels: int = 3) -> Path:
    """An nclab ResNet-18 (width 4) saved as nclab's training saves it: {"state_dict", "mean", "std", ...}."""
    torch.manual_seed(1)
    model = build_model("resnet18", num_classes=10, in_channels=in_channels, width=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    mean, std = torch.tensor(CIFAR_MEAN[:in_channels]), torch.tensor(CIFAR_STD[:in_channels])
    save_checkpoint(path, 5, model.state_dict(), mean, std)
    return path
