"""The paper-scale datasets, read through torchvision's dataset classes into uint8 (N, 3, 32, 32) arrays.

In-distribution: CIFAR-10 and CIFAR-100 (official train/test split). OOD suite in the spirit of OpenOOD v1.5:
near-OOD = the other CIFAR (its test split) and TinyImageNet; far-OOD = SVHN (test split), MNIST (test split),
Textures (DTD, all 5,640 images) and Places365. TinyImageNet and Places365 are optional and read from a local
folder of images. Every OOD image is resized the way OpenOOD's test preprocessor does for 32x32 benchmarks:
converted to RGB, shorter side resized to 32 (bilinear, antialiased), centre-cropped to 32x32.

Raw files live under a data root (torchvision's ``root``); :func:`fetch` downloads what is missing (when
allowed) and verifies every file against torchvision's checksums, naming the file at fault.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from nclab.data import CIFAR, FOLDER_OOD, TORCHVISION_SETS, ImageSet
from nclab.io import atomic_write_text
from nclab.torchvision_compat import import_torchvision

IMAGE_SIZE = 32
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

tv = import_torchvision()
from torchvision.datasets.utils import check_integrity  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

_CLASSES = {"cifar10": tv.datasets.CIFAR10, "cifar100": tv.datasets.CIFAR100, "svhn": tv.datasets.SVHN,
            "mnist": tv.datasets.MNIST, "textures": tv.datasets.DTD}
DTD_SPLITS = ("train", "val", "test")  # partition 1 of the three splits = every DTD image once


def expected_files(name: str, root: str | Path) -> list[tuple[Path, str | None]]:
    """The raw files torchvision reads for ``name``, with their MD5 where torchvision knows it."""
    root, cls = Path(root), _CLASSES[name]
    if name in CIFAR:
        folder = root / cls.base_folder
        return ([(folder / f, md5) for f, md5 in cls.train_list + cls.test_list]
                + [(folder / cls.meta["filename"], cls.meta["md5"])])
    if name == "svhn":
        _, filename, md5 = cls.split_list["test"]
        return [(root / filename, md5)]
    if name == "mnist":
        raw = root / "MNIST" / "raw"
        return [(raw / f"{prefix}-{kind}-idx{dim}-ubyte", None)
                for prefix in ("train", "t10k") for kind, dim in (("images", 3), ("labels", 1))]
    if name == "textures":
        data = root / "dtd" / "dtd"
        return [(data / "labels" / f"{split}1.txt", None) for split in DTD_SPLITS]
    raise ValueError(f"unknown dataset {name!r}; allowed: {list(_CLASSES)}")


def verify(name: str, root: str | Path) -> list[Path]:
    """Check that every raw file of ``name`` exists and matches its checksum; an error names the file."""
    files = []
    for path, md5 in expected_files(name, root):
        if not path.is_file():
            raise FileNotFoundError(f"{name}: missing raw file {path} (set data.download: true, or point "
                                    f"data.root at an existing copy)")
        if md5 is not None and not check_integrity(str(path), md5):
            raise ValueError(f"{name}: corrupt raw file {path} (MD5 differs from torchvision's {md5})")
        files.append(path)
    return files


def fetch(name: str, root: str | Path, download: bool) -> dict[str, int]:
    """Download ``name`` into ``root`` if allowed and missing, verify it; return {file: size in bytes}."""
    if download:
        kwargs = {"split": "test"} if name in ("svhn", "textures") else {"train": False}
        _CLASSES[name](root=str(root), download=True, **kwargs)
    return {str(path): path.stat().st_size for path in verify(name, root)}


def save_manifest(path: str | Path, name: str, root: str | Path, files: dict[str, int]) -> None:
    """The fetch rule's output: the data root and its verified raw files (relative path -> size)."""
    root = Path(root).resolve()
    manifest = {"dataset": name, "root": str(root),
                "files": {str(Path(file).resolve().relative_to(root)): size for file, size in files.items()}}
    atomic_write_text(path, json.dumps(manifest, indent=1) + "\n")


def manifest_root(path: str | Path) -> str:
    """The data root recorded by :func:`save_manifest`."""
    return json.loads(Path(path).read_text())["root"]


def _read(name: str, root: str | Path, **kwargs) -> object:
    try:
        return _CLASSES[name](root=str(root), download=False, **kwargs)
    except Exception as err:  # torchvision raises pickle, OS, value and runtime errors on bad files
        verify(name, root)  # names the missing or corrupt file where a check can tell which one
        files = ", ".join(str(p) for p, _ in expected_files(name, root))
        raise ValueError(f"{name}: cannot read its raw files ({files}): {err}") from err


def _nhwc_to_set(images: np.ndarray, labels: np.ndarray) -> ImageSet:
    return ImageSet(np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels.astype(np.int64))


def cifar_split(name: str, root: str | Path) -> tuple[ImageSet, ImageSet, int]:
    """Official train and test sets of CIFAR-10/100 as uint8 (N, 3, 32, 32), and the number of classes."""
    if name not in CIFAR:
        raise ValueError(f"unknown in-distribution dataset {name!r}; allowed: {list(CIFAR)}")
    train, test = (_read(name, root, train=flag) for flag in (True, False))
    return (_nhwc_to_set(train.data, np.asarray(train.targets)), _nhwc_to_set(test.data, np.asarray(test.targets)),
            len(train.classes))


def resize_center_crop(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) with C in {1, 3} -> uint8 (N, 3, 32, 32): RGB, shorter side 32, centre crop."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    resized = v2.functional.resize(images, [IMAGE_SIZE], interpolation=v2.InterpolationMode.BILINEAR,
                                   antialias=True)
    return v2.functional.center_crop(resized, [IMAGE_SIZE, IMAGE_SIZE]).contiguous()


def _unlabelled(images: torch.Tensor | np.ndarray) -> ImageSet:
    images = np.ascontiguousarray(torch.as_tensor(images).numpy())
    return ImageSet(images, np.full(len(images), -1, dtype=np.int64))


def _load_image(path: Path) -> torch.Tensor:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return resize_center_crop(v2.functional.pil_to_tensor(image.convert("RGB"))[None])[0]
    except OSError as err:
        raise ValueError(f"cannot read image {path}: {err}") from err


def _images(paths: list[Path]) -> ImageSet:
    if not paths:
        raise ValueError("no images to read")
    return _unlabelled(torch.stack([_load_image(p) for p in paths]))


def image_folder(folder: str | Path) -> ImageSet:
    """Every image below ``folder`` (recursively, sorted by path), resized and cropped to 32x32 RGB."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"image folder {folder} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    return _images(paths)


def ood_set(name: str, root: str | Path | None, folder: str | Path | None = None) -> ImageSet:
    """One OOD set of the suite as uint8 (N, 3, 32, 32), labels -1."""
    if name in FOLDER_OOD:
        return image_folder(folder)
    if name in CIFAR:
        return _unlabelled(_read(name, root, train=False).data.transpose(0, 3, 1, 2))
    if name == "svhn":
        return _unlabelled(_read(name, root, split="test").data)
    if name == "mnist":
        return _unlabelled(resize_center_crop(_read(name, root, train=False).data[:, None]))
    if name == "textures":
        paths = [p for split in DTD_SPLITS for p in _read(name, root, split=split)._image_files]
        return _images(sorted(paths))
    raise ValueError(f"unknown OOD set {name!r}; allowed: {[*TORCHVISION_SETS, *FOLDER_OOD]}")
