"""28x28 grayscale studies (MNIST, Fashion-MNIST, KMNIST): OpenOOD's LeNet, the formats of the sets each one
takes as OOD, the training options of OpenOOD's recipe, and the laptop presets' configurations."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from nclab import data, plan, training
from nclab.config import ConfigError, default_config, validate
from nclab.models import LeNet, build_model

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "config.schema.yaml"
LAPTOP_PRESETS = ("mnist-ood", "fashionmnist-ood", "fashionmnist-lt")


def test_lenet_is_openoods_network_and_its_feature_is_the_input_of_the_last_layer():
    """OpenOOD v1.0's LeNet on one channel: 61,706 parameters (156 + 2,416 + 48,120 + 10,164 + 850), an 84-dim
    h, and the logits W h + b of its last layer."""
    torch.manual_seed(0)
    model = build_model("lenet", num_classes=10, in_channels=1)
    assert isinstance(model, LeNet) and sum(p.numel() for p in model.parameters()) == 61_706
    x = torch.randn(4, 1, 28, 28)
    h = model.features(x)
    assert h.shape == (4, 84) and (h >= 0).all()  # after the hidden layer's ReLU
    torch.testing.assert_close(model(x), h @ model.fc.weight.T + model.fc.bias, rtol=0, atol=0)
    assert plan.feature_dim("lenet", None) == 84 and plan.feature_dim("lenet", 8) == 84
    with pytest.raises(ValueError, match="width"):
        build_model("lenet", num_classes=10, in_channels=1, width=8)
    assert build_model("lenet", 10, 1, head="normed", scale=30.0).fc.weight.shape == (10, 84)


def test_the_28x28_sets_take_each_other_and_the_colour_sets_as_ood():
    for name in data.MNIST_FAMILY:
        assert data.image_format(name) == "gray28" and data.channels(name) == 1 and data.image_size({"dataset": name})
        candidates = data.ood_candidates(name)
        assert name not in candidates
        assert {"photos", "noise", "cifar10", "svhn", "textures", "notmnist"} <= set(candidates)
        assert set(data.MNIST_FAMILY) - {name} <= set(candidates)
        assert set(data.near_ood(name)) == {*data.MNIST_FAMILY, "notmnist"}
    assert "fashionmnist" in data.ood_candidates("cifar10") and "cifar10" in data.near_ood("cifar100")
    assert data.ood_candidates("digits") == ["photos", "noise"]


def config_with(**sections) -> dict:
    config = default_config()
    for key, value in sections.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    return config


def test_lenet_refuses_images_of_another_size_naming_the_key():
    config = config_with(model={"arch": "lenet"})  # the miniature's 8x8 digits
    with pytest.raises(ConfigError, match="model.arch: lenet takes 28x28 images; data.dataset 'digits' has 8x8"):
        validate(config, SCHEMA)


def test_nesterov_and_the_cosines_final_learning_rate_reach_the_optimiser():
    recipe = training.Recipe(
        epochs=4, scheduler="cosine", milestones=(), gamma=0.1, warmup_epochs=0, lr=0.1, momentum=0.9,
        weight_decay=5e-4, batch_size=8, crop_padding=0, flip=False, nesterov=True, final_lr=1e-3,
    )  # fmt: skip
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    scheduler = training.make_scheduler(optimizer, recipe)
    rates = []
    for _ in range(recipe.epochs):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    expected = [1e-3 + (0.1 - 1e-3) * (1 + np.cos(np.pi * t / 4)) / 2 for t in range(1, 5)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)  # float64 arithmetic on both sides
    assert rates[-1] == pytest.approx(1e-3, rel=1e-12)


@pytest.mark.parametrize("preset", LAPTOP_PRESETS)
def test_the_laptop_presets_train_lenet_on_the_cpu_with_openoods_recipe(preset):
    raw = yaml.safe_load((ROOT / "presets" / f"{preset}.yaml").read_text())
    config = copy.deepcopy(default_config())
    for key, value in raw.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    validate(config, SCHEMA)
    assert config["training"]["device"] == "cpu" and data.image_format(config["data"]["dataset"]) == "gray28"
    network = config["model"] if "balanced" in config["studies"] else config["longtail"]["model"]
    assert network["arch"] == "lenet"
    recipe = config["training"] if "balanced" in config["studies"] else config["longtail"]["training"]
    assert (recipe["lr"], recipe["momentum"], recipe["nesterov"], recipe["weight_decay"]) == (0.1, 0.9, True, 5e-4)
    if "balanced" in config["studies"]:
        standard, extended = config["schedules"]["standard"], config["schedules"]["extended"]
        assert (standard["scheduler"], standard["epochs"], standard["final_lr"]) == ("cosine", 100, 1e-6)
        assert extended["epochs"] == 2 * standard["epochs"] and extended["scheduler"] == "multistep"
        assert len(config["training"]["seeds"]) == 3
