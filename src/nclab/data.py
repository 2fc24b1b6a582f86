"""Datasets as compact uint8 arrays (N, C, H, W) with integer labels, and the names of every dataset.

The miniature study uses scikit-learn's bundled data, which needs no download:
in-distribution = the 8x8 handwritten digits; far-OOD = patches cut from the bundled photographs and
converted to the digits' format (grayscale, 8x8, 17 intensity levels); a uniform-noise set as a sanity check.
The paper-scale datasets (CIFAR and its OOD suite, 32x32 RGB; ImageNet-LT and its OOD sets at the configured
``data.imagenet_lt.image_size``) are read by :mod:`nclab.real_data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nclab.io import atomic_savez, load_npz

DIGIT_LEVELS = 16  # load_digits pixels are integers in 0..16
IMAGE_SIZES = {"digits": 8, "cifar10": 32, "cifar100": 32}  # side of the images (ImageNet-LT: configured)
NUM_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "imagenet_lt": 1000}
CIFAR = ("cifar10", "cifar100")
IMAGENET_LT = "imagenet_lt"  # read from a local ImageNet folder and the ImageNet-LT split lists
SYNTHETIC_OOD = ("photos", "noise")  # built in the digits' format from bundled data
TORCHVISION_SETS = (*CIFAR, "svhn", "mnist", "textures")  # raw files fetched into the data root by torchvision
FOLDER_OOD = ("tinyimagenet", "places365")  # optional, read from a local image folder when present
NEAR_OOD = ("cifar10", "cifar100", "tinyimagenet")  # OpenOOD v1.5's near-OOD sets; the others are far-OOD
IMAGENET_OOD = ("textures", "places365")  # natural images disjoint from ImageNet's classes, at any size
IMAGENET_LT_SPLITS = ("train", "val", "test")  # Liu et al. 2019: 115,846 / 20,000 / 50,000 images


def needs_root(name: str) -> bool:
    """Whether a dataset is read from raw files under the data root."""
    return name in TORCHVISION_SETS


def image_format(name: str) -> str:
    """The image format of a dataset: 'digits' (8x8 grayscale), 'rgb32' (32x32 RGB) or 'imagenet'."""
    if name == IMAGENET_LT:
        return "imagenet"
    return "digits" if name == "digits" or name in SYNTHETIC_OOD else "rgb32"


def ood_candidates(dataset: str) -> list[str]:
    """The OOD sets that can be prepared in the format of the in-distribution ``dataset``."""
    if dataset == IMAGENET_LT:
        return list(IMAGENET_OOD)  # CIFAR, SVHN and MNIST are 32x32; TinyImageNet is part of ImageNet
    return [n for n in (*SYNTHETIC_OOD, *TORCHVISION_SETS, *FOLDER_OOD)
            if image_format(n) == image_format(dataset) and n != dataset]


def imagenet_lt_lists(folder: str | Path) -> dict[str, Path]:
    """The ImageNet-LT split lists in ``folder`` (lines 'train/n01440764/n01440764_190.JPEG 0')."""
    return {split: Path(folder) / f"ImageNet_LT_{split}.txt" for split in IMAGENET_LT_SPLITS}


def image_size(spec: dict) -> int:
    """Side of the images of the in-distribution set of ``data`` config ``spec`` (and of its OOD sets)."""
    if spec["dataset"] == IMAGENET_LT:
        return spec["imagenet_lt"]["image_size"]
    return IMAGE_SIZES[spec["dataset"]]


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # uint8, (N, C, H, W)
    labels: np.ndarray  # int64, (N,); -1 for OOD sets

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise ValueError("images and labels differ in length")


def _levels_to_uint8(levels: np.ndarray) -> np.ndarray:
    """Map the digits' 0..16 intensity levels onto 0..255."""
    return np.round(levels.astype(np.float64) * 255.0 / DIGIT_LEVELS).astype(np.uint8)


def digits_split(test_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """The bundled digits, split into stratified train/test sets fixed by ``seed``."""
    from sklearn.datasets import load_digits  # imported here: the Snakefile reads this module's names
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = _levels_to_uint8(digits.images)[:, None]
    labels = digits.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed
    )
    return ImageSet(images[idx_train], labels[idx_train]), ImageSet(images[idx_test], labels[idx_test])


def photo_patches(count: int, patch_size: int, image_size: int, seed: int) -> ImageSet:
    """Square patches of the bundled photographs, in the digits' format.

    Each patch (``patch_size`` pixels wide, at a random position in a random photograph) is converted to
    grayscale (ITU-R BT.601 luma), block-averaged down to ``image_size`` x ``image_size`` and quantised to the
    digits' 17 intensity levels.
    """
    if patch_size % image_size:
        raise ValueError(f"patch_size {patch_size} must be a multiple of image_size {image_size}")
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = [p.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) for p in load_sample_images().images]
    patches = np.empty((count, image_size, image_size))
    block = patch_size // image_size
    for i in range(count):
        photo = photos[rng.integers(len(photos))]
        top = rng.integers(photo.shape[0] - patch_size + 1)
        left = rng.integers(photo.shape[1] - patch_size + 1)
        patch = photo[top : top + patch_size, left : left + patch_size]
        patches[i] = patch.reshape(image_size, block, image_size, block).mean(axis=(1, 3))
    levels = np.round(patches / 255.0 * DIGIT_LEVELS)
    return ImageSet(_levels_to_uint8(levels)[:, None], np.full(count, -1, dtype=np.int64))


def uniform_noise(count: int, image_size: int, seed: int) -> ImageSet:
    """i.i.d. uniform pixels on the digits' 17 levels: an OOD set every detector should reject."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, DIGIT_LEVELS + 1, size=(count, 1, image_size, image_size))
    return ImageSet(_levels_to_uint8(levels), np.full(count, -1, dtype=np.int64))


def save_id(path: str | Path, train: ImageSet, test: ImageSet, num_classes: int, **extra: np.ndarray) -> None:
    """An in-distribution dataset; ``extra`` arrays (e.g. a subset's ``train_indices``) are stored beside it."""
    atomic_savez(path, train_images=train.images, train_labels=train.labels,
                 test_images=test.images, test_labels=test.labels, num_classes=np.int64(num_classes), **extra)


def save_ood(path: str | Path, images: ImageSet) -> None:
    atomic_savez(path, images=images.images)


def load_id(path: str | Path) -> tuple[ImageSet, ImageSet, int]:
    f = load_npz(path)
    return (ImageSet(f["train_images"], f["train_labels"]), ImageSet(f["test_images"], f["test_labels"]),
            int(f["num_classes"]))


def load_labels(path: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """The training and test labels of an in-distribution dataset, without reading its images."""
    labels = load_npz(path, keys=("train_labels", "test_labels", "num_classes"))
    return labels["train_labels"], labels["test_labels"], int(labels["num_classes"])


def load_ood(path: str | Path) -> ImageSet:
    images = load_npz(path)["images"]
    return ImageSet(images, np.full(len(images), -1, dtype=np.int64))


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 images scaled to [0, 1] (the normalisation constants).

    Accumulated in float64 over chunks of ``chunk`` images, so ImageNet-LT's 4 GB of uint8 never becomes 35 GB.
    """
    total = np.zeros(images.shape[1])
    squares = np.zeros(images.shape[1])
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].astype(np.float64) / 255.0
        total += x.sum(axis=(0, 2, 3))
        squares += np.square(x).sum(axis=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - mean**2, 0.0))
