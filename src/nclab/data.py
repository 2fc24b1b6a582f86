"""Datasets as compact uint8 arrays (N, C, H, W) with integer labels, and the names of every dataset.

The miniature study uses scikit-learn's bundled data, which needs no download:
in-distribution = the 8x8 handwritten digits; far-OOD = patches cut from the bundled photographs and
converted to the digits' format (grayscale, 8x8, 17 intensity levels); a uniform-noise set as a sanity check.
``synthetic_cifar`` is a generated CIFAR-shaped set (3x32x32 RGB, any number of classes and images) for
checking the paper-scale path on a GPU without a download; the photograph and noise sets then come in RGB.
The real datasets (MNIST, Fashion-MNIST and KMNIST, 28x28 grayscale; CIFAR and its OOD suite, 32x32 RGB;
ImageNet-LT and its OOD sets at the configured ``data.imagenet_lt.image_size``) are read by
:mod:`nclab.real_data`, which converts every OOD set into the in-distribution images' format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nclab.io import atomic_savez, load_npz

DIGIT_LEVELS = 16  # load_digits pixels are integers in 0..16
MNIST_FAMILY = ("mnist", "fashionmnist", "kmnist")  # 28x28 grayscale, 60,000 training and 10,000 test images
IMAGE_SIZES = {"digits": 8, "cifar10": 32, "cifar100": 32, "synthetic_cifar": 32} | dict.fromkeys(MNIST_FAMILY, 28)
NUM_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "imagenet_lt": 1000} | dict.fromkeys(MNIST_FAMILY, 10)
CIFAR = ("cifar10", "cifar100")
SYNTHETIC_CIFAR = "synthetic_cifar"  # generated, CIFAR-shaped (data.synthetic.synthetic_cifar)
IMAGENET_LT = "imagenet_lt"  # read from a local ImageNet folder and the ImageNet-LT split lists
SYNTHETIC_OOD = ("photos", "noise")  # built from bundled data, in the in-distribution set's format
NOISE_OOD = ("noise",)  # unstructured: far from the data in pixel space, not necessarily in feature space
TORCHVISION_SETS = (*CIFAR, "svhn", *MNIST_FAMILY, "textures")  # raw files fetched into the data root by torchvision
FOLDER_OOD = ("tinyimagenet", "places365", "notmnist")  # optional, read from a local image folder when present
NEAR_OOD = {  # OpenOOD's near-OOD sets, by in-distribution format (v1.5 for CIFAR, v1.0 for MNIST); others are far
    "rgb32": ("cifar10", "cifar100", "tinyimagenet"),
    "gray28": (*MNIST_FAMILY, "notmnist"),
}
IMAGENET_OOD = ("textures", "places365")  # natural images disjoint from ImageNet's classes, at any size
ID_DATASETS = ("digits", *MNIST_FAMILY, *CIFAR, IMAGENET_LT, SYNTHETIC_CIFAR)  # the schema's data.dataset (tested)
OOD_SETS = (*SYNTHETIC_OOD, *TORCHVISION_SETS, *FOLDER_OOD)  # the schema's data.ood_sets (a test checks)
IMAGENET_LT_SPLITS = ("train", "val", "test")  # Liu et al. 2019: 115,846 / 20,000 / 50,000 images


def needs_root(name: str) -> bool:
    """Whether a dataset is read from raw files under the data root."""
    return name in TORCHVISION_SETS


def image_format(name: str) -> str:
    """The image format of an in-distribution dataset or a read OOD set: 'digits' (8x8 grayscale), 'gray28'
    (28x28 grayscale), 'rgb32' (32x32 RGB) or 'imagenet'. The synthetic OOD sets are built in the format of the
    in-distribution set."""
    if name == IMAGENET_LT:
        return "imagenet"
    if name in (*MNIST_FAMILY, "notmnist"):
        return "gray28"
    return "digits" if name == "digits" else "rgb32"


GRAYSCALE_FORMATS = ("digits", "gray28")


def channels(name: str) -> int:
    """The image channels of an in-distribution dataset: 1 for the grayscale formats, 3 otherwise."""
    return 1 if image_format(name) in GRAYSCALE_FORMATS else 3


def near_ood(dataset: str) -> tuple[str, ...]:
    """The near-OOD sets of in-distribution ``dataset`` (semantically close), by its format (NEAR_OOD)."""
    return NEAR_OOD.get(image_format(dataset), ())


def ood_candidates(dataset: str) -> list[str]:
    """The OOD sets that can be prepared in the format of the in-distribution ``dataset``: the built-in sets,
    and for 28x28 grayscale and 32x32 RGB sets every read set, converted (nclab.real_data.to_format)."""
    if dataset == IMAGENET_LT:
        return list(IMAGENET_OOD)  # CIFAR, SVHN and MNIST are 32x32; TinyImageNet is part of ImageNet
    read = [*TORCHVISION_SETS, *FOLDER_OOD] if image_format(dataset) in ("gray28", "rgb32") else []
    return [n for n in (*SYNTHETIC_OOD, *read) if n != dataset]


def num_classes(spec: dict) -> int:
    """The number of classes of the in-distribution set of ``data`` config ``spec``."""
    if spec["dataset"] == SYNTHETIC_CIFAR:
        return spec["synthetic"][SYNTHETIC_CIFAR]["num_classes"]
    return NUM_CLASSES[spec["dataset"]]


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


def _levels_to_uint8(levels: np.ndarray, top: int = DIGIT_LEVELS) -> np.ndarray:
    """Map intensity levels 0..``top`` (the digits' 0..16 by default) onto 0..255."""
    return np.round(levels.astype(np.float64) * 255.0 / top).astype(np.uint8)


def grey_levels(image_format: str) -> int:
    """The highest intensity level of a grayscale format: the digits' 16, or 255 for 8-bit images."""
    return DIGIT_LEVELS if image_format == "digits" else 255


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


def photo_patches(
    count: int, patch_size: int, image_size: int, seed: int, rgb: bool = False, levels: int = DIGIT_LEVELS
) -> ImageSet:
    """Square patches of the bundled photographs, in the in-distribution set's format.

    Each patch (``patch_size`` pixels wide, at a random position in a random photograph) is block-averaged
    down to ``image_size`` x ``image_size``; in a grayscale format it is first converted to grayscale
    (ITU-R BT.601 luma) and then quantised to intensity levels 0..``levels`` (the digits' 16, or 255 for 8-bit
    images); with ``rgb`` it stays RGB.
    """
    if patch_size % image_size:
        raise ValueError(f"patch_size {patch_size} must be a multiple of image_size {image_size}")
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    grey = not rgb
    photos = [
        p.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) if grey else p.astype(np.float64)
        for p in load_sample_images().images
    ]
    patches = np.empty((count, image_size, image_size, *(() if grey else (3,))))
    block = patch_size // image_size
    for i in range(count):
        photo = photos[rng.integers(len(photos))]
        top = rng.integers(photo.shape[0] - patch_size + 1)
        left = rng.integers(photo.shape[1] - patch_size + 1)
        patch = photo[top : top + patch_size, left : left + patch_size]
        patches[i] = patch.reshape(image_size, block, image_size, block, *patch.shape[2:]).mean(axis=(1, 3))
    labels = np.full(count, -1, dtype=np.int64)
    if grey:
        return ImageSet(_levels_to_uint8(np.round(patches / 255.0 * levels), levels)[:, None], labels)
    return ImageSet(np.round(patches).astype(np.uint8).transpose(0, 3, 1, 2).copy(), labels)


def uniform_noise(count: int, image_size: int, seed: int, rgb: bool = False, levels: int = DIGIT_LEVELS) -> ImageSet:
    """i.i.d. uniform pixels (grayscale on levels 0..``levels``; with ``rgb``, 0..255 in each of 3 channels): an
    OOD set every detector should reject."""
    rng = np.random.default_rng(seed)
    labels = np.full(count, -1, dtype=np.int64)
    if not rgb:
        drawn = rng.integers(0, levels + 1, size=(count, 1, image_size, image_size))
        return ImageSet(_levels_to_uint8(drawn, levels), labels)
    return ImageSet(rng.integers(0, 256, size=(count, 3, image_size, image_size), dtype=np.uint8), labels)


def synthetic_cifar(
    num_classes: int, train_per_class: int, test_per_class: int, seed: int
) -> tuple[ImageSet, ImageSet]:
    """A generated CIFAR-shaped set (3x32x32 uint8, balanced classes) that a ResNet learns in a few epochs.

    Class c has a fixed random colour template (4x4 Gaussian cells, upsampled to 32x32); each image is its
    class template shifted by up to 4 pixels (circularly), scaled by a random contrast in [0.6, 1.4], plus
    i.i.d. Gaussian pixel noise (std 0.35 of the template's): 128 + 40 * (contrast * template + noise).
    """
    rng = np.random.default_rng(seed)
    templates = np.repeat(np.repeat(rng.standard_normal((num_classes, 3, 4, 4)), 8, axis=2), 8, axis=3)

    def draw(per_class: int) -> ImageSet:
        labels = np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
        images = np.empty((len(labels), 3, 32, 32), dtype=np.uint8)
        for start in range(0, len(labels), 4096):  # chunks: 50,000 float images would take 1.2 GB at once
            y = labels[start : start + 4096]
            shifts = rng.integers(-4, 5, size=(len(y), 2))
            x = np.stack([np.roll(templates[c], tuple(s), axis=(1, 2)) for c, s in zip(y, shifts)])
            x = x * rng.uniform(0.6, 1.4, size=(len(y), 1, 1, 1)) + 0.35 * rng.standard_normal(x.shape)
            images[start : start + len(y)] = np.clip(np.round(128 + 40 * x), 0, 255).astype(np.uint8)
        return ImageSet(images, labels)

    return draw(train_per_class), draw(test_per_class)


def save_id(path: str | Path, train: ImageSet, test: ImageSet, num_classes: int, **extra: np.ndarray) -> None:
    """An in-distribution dataset; ``extra`` arrays (e.g. a subset's ``train_indices``) are stored beside it."""
    atomic_savez(
        path,
        train_images=train.images,
        train_labels=train.labels,
        test_images=test.images,
        test_labels=test.labels,
        num_classes=np.int64(num_classes),
        **extra,
    )


def save_ood(path: str | Path, images: ImageSet) -> None:
    atomic_savez(path, images=images.images)


def load_id(path: str | Path) -> tuple[ImageSet, ImageSet, int]:
    f = load_npz(path)
    return (
        ImageSet(f["train_images"], f["train_labels"]),
        ImageSet(f["test_images"], f["test_labels"]),
        int(f["num_classes"]),
    )


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
