"""The real datasets, read through torchvision's dataset classes into uint8 (N, C, H, W) arrays.

In-distribution: MNIST, Fashion-MNIST and KMNIST (28x28 grayscale) and CIFAR-10 and CIFAR-100 (32x32 RGB), each
with its official train/test split. OOD suite in the spirit of OpenOOD v1.5 for CIFAR: near-OOD = the other
CIFAR (its test split) and TinyImageNet; far-OOD = SVHN (test split), MNIST (test split), Textures (DTD, all
5,640 images) and Places365; and of OpenOOD v1.0 for MNIST: near-OOD = the other 28x28 sets and notMNIST,
far-OOD = the colour sets. TinyImageNet, Places365 and notMNIST are optional and read from a local folder of
images. Every OOD set is converted into the in-distribution format by one rule (:func:`to_format`): shorter side
resized to the ID side (bilinear, antialiased) and centre-cropped, as OpenOOD's test preprocessor does, in RGB;
then, for a grayscale ID set, the ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B, rounded half up to 8 bits.

Raw files live under a data root (torchvision's ``root``); :func:`fetch` downloads what is missing (when
allowed) and verifies every file against torchvision's checksums, naming the file at fault.

ImageNet-LT (Liu et al., "Large-Scale Long-Tailed Recognition in an Open World", CVPR 2019) is read from a local
ImageNet folder (ILSVRC-2012, ``train/`` and ``val/`` with one sub-folder per class) through the standard split
lists ``ImageNet_LT_{train,val,test}.txt``: 1,000 classes, 115,846 training images (1,280 down to 5 per
class), a balanced test set of 50,000 images taken from the ImageNet validation set. Every image is
preprocessed like the OOD sets (RGB, shorter side resized to ``image_size``, centre crop), so that the whole
set fits in memory as uint8 and trains like CIFAR. The validation list (20 images per class, for tuning) is
checked but not read: the study reports on the test list, as the literature does.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from nclab.data import (
    CIFAR,
    FOLDER_OOD,
    IMAGENET_OOD,
    MNIST_FAMILY,
    NUM_CLASSES,
    TORCHVISION_SETS,
    ImageSet,
    imagenet_lt_lists,
)
from nclab.io import atomic_write_text
from nclab.torchvision_compat import import_torchvision

IMAGE_SIZE = 32
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

tv = import_torchvision()
from torchvision.datasets.utils import check_integrity  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

_CLASSES = {
    "cifar10": tv.datasets.CIFAR10,
    "cifar100": tv.datasets.CIFAR100,
    "svhn": tv.datasets.SVHN,
    "mnist": tv.datasets.MNIST,
    "fashionmnist": tv.datasets.FashionMNIST,
    "kmnist": tv.datasets.KMNIST,
    "textures": tv.datasets.DTD,
}
LUMA_PER_MILLE = (299, 587, 114)  # ITU-R BT.601 luma weights, as PIL's convert("L")
DTD_SPLITS = ("train", "val", "test")  # partition 1 of the three splits = every DTD image once
IMAGENET_LT_READ = ("train", "test")  # the ImageNet-LT splits the study reads (val is for tuning)


def expected_files(name: str, root: str | Path) -> list[tuple[Path, str | None]]:
    """The raw files torchvision reads for ``name``, with their MD5 where torchvision knows it."""
    root, cls = Path(root), _CLASSES[name]
    if name in CIFAR:
        folder = root / cls.base_folder
        return [(folder / f, md5) for f, md5 in cls.train_list + cls.test_list] + [
            (folder / cls.meta["filename"], cls.meta["md5"])
        ]
    if name == "svhn":
        _, filename, md5 = cls.split_list["test"]
        return [(root / filename, md5)]
    if name in MNIST_FAMILY:  # torchvision's layout: root/<class name>/raw, the files decompressed
        raw = root / cls.__name__ / "raw"
        return [
            (raw / f"{prefix}-{kind}-idx{dim}-ubyte", None)
            for prefix in ("train", "t10k")
            for kind, dim in (("images", 3), ("labels", 1))
        ]
    if name == "textures":
        data = root / "dtd" / "dtd"
        return [(data / "labels" / f"{split}1.txt", None) for split in DTD_SPLITS]
    raise ValueError(f"unknown dataset {name!r}; allowed: {list(_CLASSES)}")


def verify(name: str, root: str | Path) -> list[Path]:
    """Check that every raw file of ``name`` exists and matches its checksum; an error names the file."""
    files = []
    for path, md5 in expected_files(name, root):
        if not path.is_file():
            raise FileNotFoundError(
                f"{name}: missing raw file {path} (set data.download: true, or point data.root at an existing copy)"
            )
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
    manifest = {
        "dataset": name,
        "root": str(root),
        "files": {str(Path(file).resolve().relative_to(root)): size for file, size in files.items()},
    }
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
    return (
        _nhwc_to_set(train.data, np.asarray(train.targets)),
        _nhwc_to_set(test.data, np.asarray(test.targets)),
        len(train.classes),
    )


def mnist_split(name: str, root: str | Path) -> tuple[ImageSet, ImageSet, int]:
    """Official train and test sets of MNIST, Fashion-MNIST or KMNIST as uint8 (N, 1, 28, 28), and 10 classes."""
    if name not in MNIST_FAMILY:
        raise ValueError(f"unknown in-distribution dataset {name!r}; allowed: {list(MNIST_FAMILY)}")
    train, test = (_read(name, root, train=flag) for flag in (True, False))
    return (
        ImageSet(train.data.numpy()[:, None].copy(), train.targets.numpy().astype(np.int64)),
        ImageSet(test.data.numpy()[:, None].copy(), test.targets.numpy().astype(np.int64)),
        NUM_CLASSES[name],
    )


def to_format(images: torch.Tensor | np.ndarray, size: int, grayscale: bool) -> np.ndarray:
    """uint8 (N, C, H, W), C in {1, 3}, in the in-distribution format: (N, 1, size, size) if ``grayscale``, else
    (N, 3, size, size). The rule: shorter side resized to ``size`` (bilinear, antialiased) and centre-cropped in
    RGB; then for grayscale the BT.601 luma (299 R + 587 G + 114 B) / 1000, computed in integers and rounded half
    up, so that no float rounding decides a level. Images already in the format are kept as they are."""
    images = torch.as_tensor(images)
    if tuple(images.shape[1:]) == ((1 if grayscale else 3), size, size):
        return images.numpy()
    rgb = resize_center_crop(images, size)
    if not grayscale:
        return rgb.numpy()
    weighted = torch.tensordot(rgb.long(), torch.tensor(LUMA_PER_MILLE), dims=([1], [0]))
    return ((weighted + 500) // 1000).to(torch.uint8)[:, None].numpy()


def resize_center_crop(images: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """uint8 (N, C, H, W) with C in {1, 3} -> uint8 (N, 3, size, size): RGB, shorter side ``size``, centre crop."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    resized = v2.functional.resize(images, [size], interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
    return v2.functional.center_crop(resized, [size, size]).contiguous()


def _unlabelled(images: torch.Tensor | np.ndarray) -> ImageSet:
    images = np.ascontiguousarray(torch.as_tensor(images).numpy())
    return ImageSet(images, np.full(len(images), -1, dtype=np.int64))


def _load_image(path: Path, size: int) -> torch.Tensor:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return resize_center_crop(v2.functional.pil_to_tensor(image.convert("RGB"))[None], size)[0]
    except OSError as err:
        raise ValueError(f"cannot read image {path}: {err}") from err


def read_images(paths: list[Path], size: int, workers: int = 1, name: str = "images") -> np.ndarray:
    """uint8 (N, 3, size, size) of the image files ``paths`` in order, decoded by ``workers`` threads (PIL and
    torch release the GIL), with a progress line every tenth of the way."""
    if not paths:
        raise ValueError("no images to read")
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    step = max(1, len(paths) // 10)

    def read(i: int) -> None:
        out[i] = _load_image(paths[i], size).numpy()

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for done, _ in enumerate(pool.map(read, range(len(paths))), start=1):
            if done % step == 0 or done == len(paths):
                print(f"{name}: {done:,}/{len(paths):,} images read", flush=True)
    return out


def _images(paths: list[Path], size: int = IMAGE_SIZE, workers: int = 1) -> ImageSet:
    return _unlabelled(read_images(paths, size, workers))


def image_folder(folder: str | Path, size: int = IMAGE_SIZE, workers: int = 1) -> ImageSet:
    """Every image below ``folder`` (recursively, sorted by path), resized and cropped to ``size``-square RGB."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"image folder {folder} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    return _images(paths, size, workers)


def ood_set(
    name: str,
    root: str | Path | None,
    folder: str | Path | None = None,
    size: int = IMAGE_SIZE,
    workers: int = 1,
    grayscale: bool = False,
) -> ImageSet:
    """One OOD set of the suite in the in-distribution format (:func:`to_format`), labels -1: the sets read from
    image files (Textures, the folder sets) at any size, the others (32x32 or smaller) at 28 or 32."""
    if size not in (28, IMAGE_SIZE) and name not in IMAGENET_OOD:
        raise ValueError(f"OOD set {name!r} is only prepared at 28x28 or 32x32, not {size}x{size}")
    if name in FOLDER_OOD:
        return _unlabelled(to_format(image_folder(folder, size, workers).images, size, grayscale))
    if name == "textures":
        paths = [p for split in DTD_SPLITS for p in _read(name, root, split=split)._image_files]
        return _unlabelled(to_format(read_images(sorted(paths), size, workers), size, grayscale))
    if name in CIFAR:
        native = _read(name, root, train=False).data.transpose(0, 3, 1, 2)
    elif name == "svhn":
        native = _read(name, root, split="test").data
    elif name in MNIST_FAMILY:
        native = _read(name, root, train=False).data[:, None]
    else:
        raise ValueError(f"unknown OOD set {name!r}; allowed: {[*TORCHVISION_SETS, *FOLDER_OOD]}")
    return _unlabelled(to_format(native, size, grayscale))


def read_split_list(path: Path) -> list[tuple[str, int]]:
    """(relative image path, label) per line of an ImageNet-LT split list; an error names the file and line."""
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet-LT split list {path} does not exist")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise ValueError(f"{path}:{number}: expected '<relative image path> <class index>', got {line!r}")
        entries.append((fields[0], int(fields[1])))
    if not entries:
        raise ValueError(f"ImageNet-LT split list {path} is empty")
    return entries


def imagenet_lt_split(
    root: str | Path, lists: str | Path, size: int, workers: int = 1
) -> tuple[ImageSet, ImageSet, int]:
    """ImageNet-LT's training and test sets as uint8 (N, 3, size, size), and the number of classes.

    Every list is parsed and every listed file checked before any image is decoded, so a wrong path fails at
    once, naming the first missing files.
    """
    root = Path(root)
    entries = {split: read_split_list(path) for split, path in imagenet_lt_lists(lists).items()}
    num_classes = max(label for _, label in entries["train"]) + 1
    missing_classes = sorted(set(range(num_classes)) - {label for _, label in entries["train"]})
    if missing_classes:
        raise ValueError(f"ImageNet-LT training list has no image of classes {missing_classes[:10]}")
    for split in IMAGENET_LT_READ:
        beyond = [label for _, label in entries[split] if label >= num_classes]
        if beyond:
            raise ValueError(
                f"ImageNet-LT {split} list: class {beyond[0]} is beyond the training list's {num_classes} classes"
            )
        missing = [root / rel for rel, _ in entries[split] if not (root / rel).is_file()]
        if missing:
            raise FileNotFoundError(
                f"ImageNet-LT {split}: {len(missing)} listed images missing under {root}, "
                f"e.g. {[str(p) for p in missing[:3]]}"
            )
    sets = []
    for split in IMAGENET_LT_READ:
        images = read_images([root / rel for rel, _ in entries[split]], size, workers, name=f"ImageNet-LT {split}")
        sets.append(ImageSet(images, np.array([label for _, label in entries[split]], dtype=np.int64)))
    return sets[0], sets[1], num_classes
