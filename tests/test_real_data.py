"""Paper-scale loaders on small files written in each dataset's real on-disk format.

Nothing can be downloaded here, so each test writes a few images the way the official archives store them
(CIFAR pickles, SVHN .mat, MNIST IDX, DTD jpg folders + label lists) and points torchvision's checksums at
those files, so the real parsing and verification code runs.
"""

import hashlib
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from nclab import real_data
from nclab.real_data import tv


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(root, name, monkeypatch, n_per_file=6, num_classes=10, seed=0):
    """Pickled batches as in cifar-{10,100}-python.tar.gz; returns (train images NHWC, labels, test, labels)."""
    rng = np.random.default_rng(seed)
    cls = real_data._CLASSES[name]
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    label_key = "labels" if name == "cifar10" else "fine_labels"
    written = {}
    for file_name, _ in cls.train_list + cls.test_list:
        data = rng.integers(0, 256, size=(n_per_file, 3072), dtype=np.uint8)
        labels = rng.integers(0, num_classes, size=n_per_file).tolist()
        with open(folder / file_name, "wb") as f:
            pickle.dump({"data": data, label_key: labels}, f, protocol=2)
        written[file_name] = (data, labels)
    with open(folder / cls.meta["filename"], "wb") as f:
        pickle.dump({cls.meta["key"]: [f"class{i}" for i in range(num_classes)]}, f, protocol=2)
    monkeypatch.setattr(cls, "train_list", [[f, md5(folder / f)] for f, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[f, md5(folder / f)] for f, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / cls.meta["filename"])})
    return written


def write_svhn(root, monkeypatch, n=7):
    x = np.random.default_rng(1).integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    scipy.io.savemat(root / "test_32x32.mat", {"X": x, "y": np.arange(1, n + 1).reshape(n, 1) % 10 + 1})
    split = tv.datasets.SVHN.split_list
    monkeypatch.setattr(
        tv.datasets.SVHN,
        "split_list",
        {**split, "test": [split["test"][0], "test_32x32.mat", md5(root / "test_32x32.mat")]},
    )
    return x


def write_idx(path, array):
    magic = {3: 0x0803, 1: 0x0801}[array.ndim]
    path.write_bytes(struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes())


MNIST_FOLDERS = {"mnist": "MNIST", "fashionmnist": "FashionMNIST", "kmnist": "KMNIST"}  # torchvision's layout


def write_mnist(root, n=5, name="mnist"):
    """Decompressed IDX files as torchvision leaves them in root/<class name>/raw; returns (train, test)."""
    raw = root / MNIST_FOLDERS[name] / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(2)
    images = {p: rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8) for p in ("train", "t10k")}
    for prefix, x in images.items():
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", (np.arange(n) + (prefix == "t10k")) % 10)
    return images["train"], images["t10k"]


def write_dtd(root):
    data = root / "dtd" / "dtd"
    rng = np.random.default_rng(3)
    names = {
        "train": ["banded/banded_0001.jpg", "woven/woven_0002.jpg"],
        "val": ["banded/banded_0003.jpg"],
        "test": ["woven/woven_0004.jpg"],
    }
    (data / "labels").mkdir(parents=True)
    for split, files in names.items():
        (data / "labels" / f"{split}1.txt").write_text("".join(f + "\n" for f in files))
        for i, f in enumerate(files):
            (data / "images" / f).parent.mkdir(parents=True, exist_ok=True)
            size = (40 + 10 * i, 64)  # (width, height): not square, larger than 32
            Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(data / "images" / f)
    return sum(len(f) for f in names.values())


@pytest.mark.parametrize("name,num_classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_split_reads_the_pickled_batches(tmp_path, monkeypatch, name, num_classes):
    written = write_cifar(tmp_path, name, monkeypatch, num_classes=num_classes)
    train, test, classes = real_data.cifar_split(name, tmp_path)
    assert classes == num_classes
    cls = real_data._CLASSES[name]
    first_file, _ = cls.train_list[0]
    data, labels = written[first_file]
    np.testing.assert_array_equal(train.images[: len(labels)], data.reshape(-1, 3, 32, 32))
    np.testing.assert_array_equal(train.labels[: len(labels)], labels)
    assert train.images.dtype == np.uint8 and train.images.shape[1:] == (3, 32, 32)
    assert len(train.labels) == 6 * len(cls.train_list) and len(test.labels) == 6 * len(cls.test_list)
    files = real_data.fetch(name, tmp_path, download=False)  # verification passes, nothing downloaded
    assert files
    real_data.save_manifest(tmp_path / "manifest.json", name, tmp_path, files)
    assert real_data.manifest_root(tmp_path / "manifest.json") == str(tmp_path.resolve())
    np.testing.assert_array_equal(real_data.ood_set(name, tmp_path).images, test.images)


def test_cifar_corrupt_and_missing_files_are_named(tmp_path, monkeypatch):
    write_cifar(tmp_path, "cifar10", monkeypatch)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])  # truncated
    with pytest.raises(ValueError, match="corrupt raw file .*data_batch_3"):
        real_data.cifar_split("cifar10", tmp_path)
    batch.unlink()
    with pytest.raises(FileNotFoundError, match="missing raw file .*data_batch_3"):
        real_data.fetch("cifar10", tmp_path, download=False)


def test_svhn_reads_the_mat_file(tmp_path, monkeypatch):
    x = write_svhn(tmp_path, monkeypatch)
    images = real_data.ood_set("svhn", tmp_path)
    np.testing.assert_array_equal(images.images, x.transpose(3, 2, 0, 1))
    assert (images.labels == -1).all()


def test_svhn_unreadable_file_is_named(tmp_path, monkeypatch):
    write_svhn(tmp_path, monkeypatch)
    path = tmp_path / "test_32x32.mat"
    path.write_bytes(b"not a mat file")
    split = tv.datasets.SVHN.split_list
    monkeypatch.setattr(tv.datasets.SVHN, "split_list", {**split, "test": [*split["test"][:2], md5(path)]})
    with pytest.raises(ValueError, match="test_32x32.mat"):
        real_data.ood_set("svhn", tmp_path)


def test_mnist_is_read_from_idx_files_and_resized_to_rgb32(tmp_path):
    _, x = write_mnist(tmp_path)
    images = real_data.ood_set("mnist", tmp_path).images
    assert images.shape == (5, 3, 32, 32) and images.dtype == np.uint8
    assert (images[:, 0] == images[:, 1]).all() and (images[:, 1] == images[:, 2]).all()  # grey -> RGB
    # upsampling 28 -> 32 bilinearly keeps the mean intensity within rounding
    np.testing.assert_allclose(images[:, 0].mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=3)


@pytest.mark.parametrize("name", MNIST_FOLDERS)
def test_the_28x28_sets_are_read_whole_as_their_own_and_as_another_ids_ood_set(tmp_path, name):
    train_images, test_images = write_mnist(tmp_path, n=7, name=name)
    train, test, num_classes = real_data.mnist_split(name, tmp_path)
    assert num_classes == 10 and train.images.shape == (7, 1, 28, 28) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.images[:, 0], train_images)
    np.testing.assert_array_equal(test.images[:, 0], test_images)
    assert train.labels.tolist() == [0, 1, 2, 3, 4, 5, 6] and test.labels.tolist() == [1, 2, 3, 4, 5, 6, 7]
    ood = real_data.ood_set(name, tmp_path, size=28, grayscale=True)  # another 28x28 set's OOD set: unchanged
    np.testing.assert_array_equal(ood.images[:, 0], test_images)
    assert (ood.labels == -1).all()
    assert [p for p, _ in real_data.expected_files(name, tmp_path)][0].parent == tmp_path / MNIST_FOLDERS[name] / "raw"
    (tmp_path / MNIST_FOLDERS[name] / "raw" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=f"{name}: missing raw file .*train-labels-idx1-ubyte"):
        real_data.verify(name, tmp_path)


def test_colour_sets_become_28x28_grey_by_resizing_then_bt601_luma(tmp_path, monkeypatch):
    """The stated rule against PIL: at 28x28 the resize is the identity and the luma PIL's convert("L"), which
    rounds its fixed-point sum, so within one level; at 32x32 the resize is torchvision's antialiased bilinear."""
    rng = np.random.default_rng(5)
    rgb28 = rng.integers(0, 256, size=(6, 3, 28, 28), dtype=np.uint8)
    grey = real_data.to_format(rgb28, 28, grayscale=True)
    pil = np.stack([np.asarray(Image.fromarray(x.transpose(1, 2, 0)).convert("L")) for x in rgb28])
    assert grey.shape == (6, 1, 28, 28) and np.abs(grey[:, 0].astype(int) - pil).max() <= 1
    test_batch = write_cifar(tmp_path, "cifar10", monkeypatch)["test_batch"][0]
    cifar = test_batch.reshape(-1, 3, 32, 32)
    images = real_data.ood_set("cifar10", tmp_path, size=28, grayscale=True).images
    r, g, b = real_data.resize_center_crop(torch.from_numpy(cifar), 28).numpy().astype(np.int64).transpose(1, 0, 2, 3)
    expected = np.floor((299 * r + 587 * g + 114 * b) / 1000 + 0.5)  # 0.299 R + 0.587 G + 0.114 B, half up
    assert images.shape == (len(cifar), 1, 28, 28)
    np.testing.assert_array_equal(images[:, 0], expected.astype(np.uint8))


def test_mnist_truncated_file_is_named(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte"):
        real_data.ood_set("mnist", tmp_path)


def test_textures_reads_every_dtd_split_and_centre_crops(tmp_path):
    count = write_dtd(tmp_path)
    images = real_data.ood_set("textures", tmp_path).images
    assert images.shape == (count, 3, 32, 32)
    broken = tmp_path / "dtd" / "dtd" / "images" / "woven" / "woven_0004.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match="woven_0004.jpg"):
        real_data.ood_set("textures", tmp_path)


def test_resize_center_crop_matches_the_documented_transform():
    """Shorter side to 32 then a centre crop: a constant image stays constant, a 64x32 stripe is cropped."""
    import torch

    constant = torch.full((1, 3, 50, 70), 77, dtype=torch.uint8)
    assert (real_data.resize_center_crop(constant) == 77).all()
    wide = torch.zeros((1, 1, 32, 96), dtype=torch.uint8)
    wide[..., 32:64] = 255  # the middle third survives the crop, the black sides do not
    assert (real_data.resize_center_crop(wide) == 255).all()


def test_image_folder_is_sorted_recursive_and_names_bad_files(tmp_path):
    for i, sub in enumerate(["b", "a", "a/deeper"]):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((40, 40, 3), 10 * i, dtype=np.uint8)).save(tmp_path / sub / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    images = real_data.ood_set("tinyimagenet", None, folder=tmp_path).images
    assert images[:, 0, 0, 0].tolist() == [20, 10, 0]  # a/deeper/img2, a/img1, b/img0
    with pytest.raises(FileNotFoundError, match="missing_folder"):
        real_data.image_folder(tmp_path / "missing_folder")
    (tmp_path / "b" / "img0.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="img0.png"):
        real_data.image_folder(tmp_path)


def test_plain_import_torchvision_works_in_the_environment():
    """tools/setup.sh's .pth hook: a researcher's own script imports torchvision and runs a model."""
    script = (
        "import torch, torchvision\n"
        "model = torchvision.models.resnet18(num_classes=10).eval()\n"
        "print(tuple(model(torch.zeros(2, 3, 32, 32)).shape))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "(2, 10)"


def test_the_hook_is_what_makes_torchvision_import_beside_a_cpu_torch():
    """Without nclab's hook the PyPI build of torchvision fails beside the CPU torch; the hook acts only then."""
    script = (
        "import sys\n"
        "from nclab import torchvision_compat\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != '_TorchvisionHook']\n"
        "try:\n"
        "    import torchvision\n"
        "except RuntimeError as err:\n"
        "    print('fails:', err)\n"
        "else:\n"
        "    print('imports')"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    import torch

    if torch.version.cuda is None and "torchvision::nms" not in run.stdout:
        pytest.skip("this torchvision matches the CPU torch: the hook has nothing to do")
    expected = "imports" if torch.version.cuda else "fails: operator torchvision::nms does not exist"
    assert run.stdout.strip() == expected
