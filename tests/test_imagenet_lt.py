"""ImageNet-LT on a tiny fake tree in the real layout: an ILSVRC-2012 folder (train/ and val/ with one folder of
JPEGs per WordNet id) and the three split lists ImageNet_LT_{train,val,test}.txt, read by the real loader and
by the real workflow (ResNet-50, the ``given`` profile) up to the compiled paper."""

import numpy as np
import pytest
import torch
import yaml
from conftest import snakemake, tiny_workdir
from PIL import Image

from nclab import longtail, real_data
from nclab.data import ImageSet, load_id
from nclab.models import build_model

WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361"]
TRAIN_COUNTS = [16, 8, 4, 2]  # long-tailed as ImageNet-LT (1,280 ... 5): IR 8
TEST_PER_CLASS, VAL_PER_CLASS = 3, 2


def colour(c: int, i: int) -> tuple[int, int, int]:
    return (40 + 60 * c, (17 * i) % 200 + 20, 230 - 50 * c)


def write_jpeg(path, rgb, size=(48, 36)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path, "JPEG", quality=95)


def write_fake_imagenet_lt(base):
    """Solid-colour JPEGs (landscape and portrait) where ImageNet keeps its images, and the lists naming them;
    returns (ImageNet root, lists folder, {split: [(relative path, label, colour)]})."""
    root, lists = base / "imagenet", base / "ImageNet_LT"
    lists.mkdir(parents=True)
    splits = {"train": [], "val": [], "test": []}
    number = 0
    for c, wnid in enumerate(WNIDS):
        for i in range(TRAIN_COUNTS[c]):
            splits["train"].append((f"train/{wnid}/{wnid}_{1000 + i}.JPEG", c, colour(c, i)))
        for i in range(VAL_PER_CLASS):  # ImageNet-LT's val images come from ImageNet's training set
            splits["val"].append((f"train/{wnid}/{wnid}_{2000 + i}.JPEG", c, colour(c, 50 + i)))
        for i in range(TEST_PER_CLASS):  # its test images from ImageNet's validation set, sorted into class folders
            number += 1
            splits["test"].append((f"val/{wnid}/ILSVRC2012_val_{number:08d}.JPEG", c, colour(c, 90 + i)))
    for split, entries in splits.items():
        for k, (rel, _, rgb) in enumerate(entries):
            write_jpeg(root / rel, rgb, size=(48, 36) if k % 2 else (30, 44))
        (lists / f"ImageNet_LT_{split}.txt").write_text("".join(f"{rel} {label}\n" for rel, label, _ in entries))
    return root, lists, splits


@pytest.fixture
def fake(tmp_path):
    return write_fake_imagenet_lt(tmp_path)


def test_imagenet_lt_reads_the_train_and_test_lists_in_order(fake):
    root, lists, splits = fake
    train, test, num_classes = real_data.imagenet_lt_split(root, lists, size=16, workers=3)
    assert num_classes == len(WNIDS)
    for got, split in ((train, "train"), (test, "test")):
        assert got.images.shape == (len(splits[split]), 3, 16, 16) and got.images.dtype == np.uint8
        np.testing.assert_array_equal(got.labels, [label for _, label, _ in splits[split]])
        expected = np.array([rgb for _, _, rgb in splits[split]], dtype=float)[:, :, None, None]
        assert np.abs(got.images.astype(float) - expected).max() <= 4  # solid colours survive JPEG and resizing
    np.testing.assert_array_equal(np.bincount(train.labels), TRAIN_COUNTS)


def test_imagenet_lt_errors_name_the_list_line_or_file(fake):
    root, lists, _ = fake
    (lists / "ImageNet_LT_val.txt").unlink()
    with pytest.raises(FileNotFoundError, match="ImageNet_LT_val.txt"):
        real_data.imagenet_lt_split(root, lists, size=8)
    (lists / "ImageNet_LT_val.txt").write_text("train/n01440764/n01440764_2000.JPEG 0\nbroken-line\n")
    with pytest.raises(ValueError, match=r"ImageNet_LT_val.txt:2: expected"):
        real_data.imagenet_lt_split(root, lists, size=8)
    (lists / "ImageNet_LT_val.txt").write_text("train/n01440764/n01440764_2000.JPEG 0\n")
    missing = root / "val" / WNIDS[2] / "ILSVRC2012_val_00000008.JPEG"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match="ILSVRC2012_val_00000008.JPEG"):
        real_data.imagenet_lt_split(root, lists, size=8)
    missing.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot read image .*ILSVRC2012_val_00000008.JPEG"):
        real_data.imagenet_lt_split(root, lists, size=8)


def test_given_profile_keeps_the_training_set_and_checks_its_ratio():
    labels = np.repeat(np.arange(4), TRAIN_COUNTS)
    train = ImageSet(np.zeros((len(labels), 1, 2, 2), np.uint8), labels)
    subset, indices = longtail.longtail_subset(train, 4, 8.0, "given", seed=0)
    assert subset is train and np.array_equal(indices, np.arange(len(labels)))
    with pytest.raises(ValueError, match=r"longtail.ratios: .* 16/2 = 8, not 100"):
        longtail.longtail_subset(train, 4, 100.0, "given", seed=0)


def test_resnet50_matches_torchvision_in_size_and_features():
    model = build_model("resnet50", num_classes=1000, in_channels=3, width=64)
    assert sum(p.numel() for p in model.parameters()) == 25_557_032  # torchvision.models.resnet50()
    assert model.feature_dim == 2048
    small = build_model("resnet50", num_classes=5, in_channels=3, width=2).eval()
    x = torch.randn(3, 3, 32, 32)
    h = small.features(x)
    assert h.shape == (3, 64) and bool((h >= 0).all())
    torch.testing.assert_close(small(x), small.fc(h))


FAKE_CONFIG = {
    "studies": ["longtail"],
    "training": {"seeds": [0]},
    "data": {"dataset": "imagenet_lt", "ood_sets": ["places365"]},
    "longtail": {
        "profile": "given",
        "ratios": [8],
        "losses": ["ce"],
        "strategies": ["none", "proj"],
        "model": {"arch": "resnet50", "width": 2},
        "shot_thresholds": {"many": 10, "few": 3},
        "training": {"batch_size": 8},
        "schedule": {
            "scheduler": "warmup_multistep",
            "epochs": 2,
            "warmup_epochs": 1,
            "milestones": [0.5],
            "checkpoints": [1],
        },
    },
    "ood": {
        "methods": ["msp", "energy", "vim", "neco", "knn"],
        "hyperparameters": {"vim": {"dim": 8}, "neco": {"dim": 5}, "knn": {"k": 5}},
    },
    "figures": {"histograms": {"methods": ["energy"], "bins": 10}},
    "paper": {"headline_ood": "places365", "headline_methods": ["msp", "energy", "vim", "neco", "knn"]},
}


@pytest.mark.workflow
def test_workflow_runs_imagenet_lt_from_the_fake_tree_to_the_paper(tmp_path):
    """The only test of the ImageNet-LT path end to end: the list files, JPEG decoding and the ResNet-50 run
    through the real workflow to the PDF, from a fake tree in the real layout."""
    root, lists, splits = write_fake_imagenet_lt(tmp_path / "data")
    places = tmp_path / "data" / "places365"
    for i in range(6):
        write_jpeg(places / f"{i:03d}.jpg", (10 * i, 200, 90), size=(40, 40))
    config = yaml.safe_load(yaml.safe_dump(FAKE_CONFIG))
    config["data"]["imagenet_lt"] = {"root": str(root), "lists": str(lists), "image_size": 32}
    config["data"]["folders"] = {"places365": str(places)}
    workdir = tiny_workdir(tmp_path / "work", config)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    train, test, num_classes = load_id(workdir / "results/tiny/data/longtail/imagenet_lt/given-ir8-seed0.npz")
    assert train.images.shape[1:] == (3, 32, 32) and num_classes == 4
    np.testing.assert_array_equal(np.bincount(train.labels), TRAIN_COUNTS)
    assert len(test.labels) == TEST_PER_CLASS * len(WNIDS)
    checkpoint = workdir / "results/tiny/runs/longtail/ir8/ce/proj/seed0/checkpoints/epoch2.pt"
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert state["fc.weight"].shape == (4, 64) and "stages.3.2.conv3.weight" in state  # ResNet-50, width 2
    macros = (workdir / "results/tiny/report/longtail/macros.tex").read_text()
    assert r"\newcommand{\LTArch}{ResNet-50}" in macros and "ImageNet-LT" in macros
    assert r"The training set is long-tailed as published" in macros
    assert (workdir / "results/tiny/paper/paper.pdf").stat().st_size > 0
    # a wrong ratio for the given split fails when the split is prepared, naming the key
    config["longtail"]["ratios"] = [100]
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir)
    assert result.returncode != 0
    log = (workdir / "results/tiny/logs/data/longtail/imagenet_lt-ir100.log").read_text()
    assert "longtail.ratios: profile 'given'" in log and "16/2 = 8, not 100" in log
