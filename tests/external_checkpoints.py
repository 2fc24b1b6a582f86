"""Checkpoints made outside nclab, as a researcher's own code saves them, for the tests of nclab.external and of
the external study: torchvision ResNet-18s (random, and trained a few steps on synthetic CIFAR-shaped data), an
nclab checkpoint, and random timm models saved as .pth, .safetensors and a model folder (nothing downloaded)."""

import functools
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from nclab.external import import_timm
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


TIMM_MODELS = {  # small timm models at 32 x 32, random: name -> create_model's keyword arguments
    "resnet18": {},
    "convnext_atto": {},
    "vit_tiny_patch16_224": {"img_size": 32, "patch_size": 8},
}


@functools.cache  # read only: the tests save it and compare with it
def timm_model(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return import_timm().create_model(name, pretrained=False, num_classes=10, **TIMM_MODELS[name]).eval()


def timm_entry(name: str, checkpoint: str) -> dict:
    """An external model's entry for timm model ``name``, at 32 x 32 (its data config's mean and std)."""
    return {
        "architecture": f"timm:{name}",
        "num_classes": 10,
        "checkpoints": checkpoint,
        "image_size": 32,
        "create_kwargs": TIMM_MODELS[name],
    }


def save_timm(model: torch.nn.Module, path: Path) -> Path:
    """``model``'s weights as a .pth or .safetensors file, or, for a path without a suffix, as a model folder:
    model.safetensors and a config.json recording its preprocessing, as timm's push_to_hf_hub writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".pth":
        torch.save(state, path)
    elif path.suffix == ".safetensors":
        save_file(state, path)
    else:
        path.mkdir(exist_ok=True)
        save_file(state, path / "model.safetensors")
        config = {"architecture": "x", "num_classes": 10, "pretrained_cfg": {"input_size": [3, 32, 32]}}
        config["pretrained_cfg"] |= {"mean": [0.25, 0.5, 0.75], "std": [0.2, 0.3, 0.4]}
        (path / "config.json").write_text(json.dumps(config))
    return path
