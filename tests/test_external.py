"""Models trained elsewhere (nclab.external, docs/external.md): checkpoints saved by torchvision code and by nclab,
loaded safely; their features equal the network's penultimate output computed directly, W and b its final
layer's; every bad input stops before any data is read, naming the key and the file; and the real workflow runs
from them to the PDF."""

import copy
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import EXTERNAL_MODELS, ROOT, data_seed, snakemake
from external_checkpoints import (
    NCLAB,
    TV,
    save_nclab_checkpoint,
    torchvision_resnet18,
)
from precision import float32_tolerance, layer_sums
from test_config_report import merge

from nclab import data
from nclab.config import ConfigError, validate
from nclab.external import ExternalModelError, extract, extract_layers, load_external, named_layers, sha256
from nclab.features import pool
from nclab.io import epoch_file, load_dump
from nclab.models import build_model
from nclab.torchvision_compat import import_torchvision

tv = import_torchvision()
IMAGES = np.random.default_rng(data_seed(0)).integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
SCHEMA = ROOT / "schemas" / "config.schema.yaml"
EXAMPLE = yaml.safe_load((ROOT / "presets" / "external-example.yaml").read_text())


def normalised(images: np.ndarray, size: int = 32) -> torch.Tensor:
    """The documented preprocessing, written out: [0, 1], resize where needed, CIFAR mean and std."""
    x = torch.from_numpy(images).float() / 255
    if size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    mean, std = torch.tensor(TV["mean"]).view(1, 3, 1, 1), torch.tensor(TV["std"]).view(1, 3, 1, 1)
    return (x - mean) / std


def network_tolerance(model: torch.nn.Module, expected: torch.Tensor):
    """Two float32 forward passes of ``model`` (batched, laid out or dispatched differently): each off by the
    float32 rounding of its layers' sums (precision.layer_sums) at the scale of the output."""
    return float32_tolerance(expected.detach(), sums=2 * layer_sums(model))


@torch.no_grad()
def resnet_penultimate(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's ResNet up to the pooled feature, layer by layer (its forward, less the fc)."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
    return torch.flatten(model.avgpool(x), 1)


@pytest.mark.parametrize("steps", [0, 3], ids=["random", "trained"])
def test_torchvision_features_and_head_are_the_penultimate_output_and_fc(tmp_path, steps):
    reference = torchvision_resnet18(steps=steps)
    path = tmp_path / "model.pt"
    torch.save(reference.state_dict(), path)
    model = load_external("tv", {**TV, "final_layer": None}, path, in_channels=3)
    features, logits = extract(model, IMAGES, batch_size=5)
    expected = resnet_penultimate(reference, normalised(IMAGES))
    np.testing.assert_allclose(features, expected.numpy(), **network_tolerance(reference, expected))
    expected_logits = reference.fc(expected).detach()
    np.testing.assert_allclose(logits, expected_logits.numpy(), **network_tolerance(reference, expected_logits))
    assert model.final_layer.weight.equal(reference.fc.weight) and model.final_layer.bias.equal(reference.fc.bias)


def test_named_layers_are_the_modules_outputs_pooled_in_the_same_forward_pass(tmp_path):
    """The depth analysis of a torchvision model: each named module's output, pooled to 2 x 2, equals the same
    module's output in its forward pass written out layer by layer; h and the logits are extract's."""
    reference = torchvision_resnet18(steps=3)
    torch.save(reference.state_dict(), tmp_path / "model.pt")
    model = load_external("tv", TV, tmp_path / "model.pt", in_channels=3)
    names = ["conv1", "layer1", "layer3.1.conv2"]
    features, logits, found = extract_layers(model, IMAGES, named_layers(model, names, "key"), grid=2, batch_size=5)
    assert list(found) == names
    with torch.no_grad():  # the forward pass written out
        x = reference.conv1(normalised(IMAGES))
        by_hand = {"conv1": x}
        x = reference.layer1(reference.maxpool(reference.relu(reference.bn1(x))))
        by_hand["layer1"] = x
        x = reference.layer2(x)
        block = reference.layer3[1]
        inner = block.bn1(block.conv1(reference.layer3[0](x)))
        by_hand["layer3.1.conv2"] = block.conv2(block.relu(inner))
    for name in names:
        expected = pool(by_hand[name], 2)
        assert found[name].shape == (12, expected.shape[1]) and expected.shape[1] == by_hand[name].shape[1] * 4
        np.testing.assert_allclose(found[name], expected.numpy(), **network_tolerance(reference, expected))
    alone = extract(model, IMAGES, batch_size=5)
    assert np.array_equal(features, alone[0]) and np.array_equal(logits, alone[1])  # the same batches


def test_an_image_size_other_than_the_datas_is_resized_as_documented(tmp_path):
    reference = torchvision_resnet18()
    torch.save(reference.state_dict(), tmp_path / "model.pt")
    model = load_external("tv", {**TV, "image_size": 48}, tmp_path / "model.pt", in_channels=3)
    features, _ = extract(model, IMAGES)
    expected = resnet_penultimate(reference, normalised(IMAGES, 48))
    np.testing.assert_allclose(features, expected.numpy(), **network_tolerance(reference, expected))


def test_nclab_checkpoints_and_wrapped_state_dicts_load(tmp_path):
    path = save_nclab_checkpoint(tmp_path / "nclab.pt")  # {"state_dict": ..., "mean", "std", "epoch"}
    torch.manual_seed(1)
    reference = build_model("resnet18", num_classes=10, in_channels=3, width=4).eval()
    model = load_external("net", NCLAB, path, in_channels=3)
    features, _ = extract(model, IMAGES)
    with torch.no_grad():
        expected = reference.features(normalised(IMAGES))
        np.testing.assert_allclose(features, expected.numpy(), **network_tolerance(reference, expected))
    wrapped = tmp_path / "wrapped.pt"  # DataParallel's prefix under a "model" entry
    state = {f"module.{k}": v for k, v in torchvision_resnet18().state_dict().items()}
    torch.save({"model": state, "optimizer": {"lr": torch.tensor(0.1)}}, wrapped)
    assert load_external("tv", TV, wrapped, in_channels=3).final_layer.out_features == 10


def error_of(tmp_path: Path, spec: dict, content=None, in_channels: int = 3) -> str:
    path = tmp_path / "model.pt"
    if content is not None:
        torch.save(content, path)
    with pytest.raises(ExternalModelError) as caught:
        load_external("mine", spec, path, in_channels, position=1)
    return str(caught.value)


def test_a_missing_checkpoint_is_named(tmp_path):
    assert "external.models.mine.checkpoints[1]: checkpoint" in error_of(tmp_path, TV)
    assert "not found" in error_of(tmp_path, TV)


def test_a_file_that_needs_pickle_is_refused(tmp_path):
    message = error_of(tmp_path, TV, torchvision_resnet18())  # torch.save(model): a pickled module
    assert "external.models.mine.checkpoints[1]" in message and "needs pickle" in message
    assert "weights_only=True" in message and "state_dict()" in message


def test_keys_that_do_not_match_the_architecture_are_listed(tmp_path):
    state = tv.models.resnet34(num_classes=10).state_dict()
    message = error_of(tmp_path, TV, state)
    assert "keys of" in message and "do not match the architecture" in message
    assert "unexpected, first: ['layer1.2.conv1.weight'" in message and "external.models.mine.architecture" in message
    message = error_of(tmp_path, {**TV, "architecture": "resnet34"}, tv.models.resnet18(num_classes=10).state_dict())
    assert "missing, first: ['layer1.2.conv1.weight'" in message


def test_a_class_count_that_differs_from_the_checkpoints_is_refused(tmp_path):
    message = error_of(tmp_path, TV, tv.models.resnet18(num_classes=100).state_dict())
    assert "other shapes" in message and "fc.weight: (100, 512) in the file, (10, 512) in the model" in message


def test_a_model_without_a_final_linear_layer_is_refused(tmp_path):
    squeeze = {**TV, "architecture": "squeezenet1_0"}  # its classifier is a convolution
    message = error_of(tmp_path, squeeze, tv.models.squeezenet1_0(num_classes=10).state_dict())
    assert "no final linear layer found in squeezenet1_0" in message and "final_layer" in message
    message = error_of(tmp_path, {**TV, "final_layer": "layer4"}, torchvision_resnet18().state_dict())
    assert "external.models.mine.final_layer: 'layer4' is not a linear layer" in message and "'fc'" in message


def test_an_image_size_the_architecture_cannot_take_is_refused(tmp_path):
    vit = {**TV, "architecture": "vit_b_16"}  # 224 x 224 only
    message = error_of(tmp_path, vit, tv.models.vit_b_16(num_classes=10).state_dict())
    assert message.startswith("external.models.mine.image_size: VisionTransformer cannot take 3x32x32 images")


def test_an_unknown_architecture_is_refused(tmp_path):
    message = error_of(tmp_path, {**TV, "architecture": "resnet19"}, torchvision_resnet18().state_dict())
    assert "external.models.mine.architecture: 'resnet19' is neither a torchvision" in message


def test_a_layer_that_is_no_module_or_outputs_no_map_is_refused_naming_the_key(tmp_path):
    torch.save(torchvision_resnet18().state_dict(), tmp_path / "model.pt")
    model = load_external("mine", TV, tmp_path / "model.pt", in_channels=3)
    with pytest.raises(ExternalModelError) as caught:
        named_layers(model, ["layer1", "layer9"], "external.models.mine.layers")
    message = str(caught.value)
    assert message.startswith("external.models.mine.layers[1]: 'layer9' is not a module of the network")
    assert "conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4, avgpool, fc" in message
    # a hook registered first replaces layer4's output by a vector of all its values: neither maps nor vectors
    handle = model.network.layer4.register_forward_hook(lambda module, inputs, output: output.flatten())
    try:
        with pytest.raises(ExternalModelError, match=r"layers: 'layer4' outputs \(1024,\); a layer must output"):
            extract_layers(model, IMAGES[:2], {"layer4": model.network.layer4}, grid=2)
    finally:
        handle.remove()


def external_config(**model: object) -> dict:
    """The example preset over config.yaml (as Snakemake merges them), its model's entry changed by ``model``."""
    config = merge(yaml.safe_load((ROOT / "config.yaml").read_text()), copy.deepcopy(EXAMPLE))
    config["external"]["models"] = {"mine": {**TV, "checkpoints": "tests/tiny.yaml", **model}}  # a file that exists
    return config


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"checkpoints": ["tests/tiny.yaml", "absent.pt"]},
            "external.models.mine.checkpoints[1]: checkpoint absent.pt not found",
        ),
        (
            {"num_classes": 100},
            "external.models.mine.num_classes: 100, but data.dataset 'synthetic_cifar' has 10 classes",
        ),
        (
            {"mean": [0.5]},
            "external.models.mine.mean: 1 values, but data.dataset 'synthetic_cifar' has 3-channel images",
        ),
        ({"epochs": [3, 2]}, "external.models.mine.epochs: [3, 2] must be increasing, one per checkpoint (1)"),
        ({"architecture": 18}, "external.models.mine.architecture"),
    ],
)
def test_config_errors_name_the_key_before_any_job(change, message):
    with pytest.raises(ConfigError) as caught:
        validate(external_config(**change), SCHEMA)
    assert message in str(caught.value)


def test_the_example_preset_is_valid_once_its_checkpoint_exists(tmp_path, monkeypatch):
    config = merge(yaml.safe_load((ROOT / "config.yaml").read_text()), copy.deepcopy(EXAMPLE))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        validate(copy.deepcopy(config), SCHEMA)
    for name, file in (("resnet18", "resnet18.pt"), ("convnext", "convnext.safetensors")):
        assert f"external.models.{name}.checkpoints[0]: checkpoint checkpoints/{file} not found" in str(caught.value)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "resnet18.pt").touch()
    (tmp_path / "checkpoints" / "convnext.safetensors").touch()
    validate(config, SCHEMA)
    assert config["external"]["models"]["resnet18"]["final_layer"] is None
    assert config["external"]["models"]["convnext"]["mean"] is None  # from the timm model's data config


@pytest.mark.workflow
def test_the_workflow_analyses_torchvision_and_nclab_checkpoints_to_the_pdf(external_run):
    """Models trained elsewhere through the real workflow to the PDF and the HTML report (a torchvision model's
    two checkpoints, an nclab network, a timm model in a folder): the dumped features equal the network's
    penultimate output, every file is listed with its SHA-256."""
    workdir, _ = external_run
    assert (workdir / "results/external/paper/paper.pdf").read_bytes().startswith(b"%PDF")
    tv_files = [workdir / path for path in EXTERNAL_MODELS["tv-resnet18"]["checkpoints"]]
    nclab_file = workdir / EXTERNAL_MODELS["nclab-net"]["checkpoints"]
    run = workdir / "results/external/runs/external/tv-resnet18/seed0"
    _, test_set, _ = data.load_id(workdir / "results/external/data/synthetic_cifar.npz")
    reference = torchvision_resnet18(steps=3)  # the second checkpoint, saved with DataParallel's prefix
    dump = load_dump(epoch_file(run / "features", 2, ".npz"))
    expected = resnet_penultimate(reference, normalised(test_set.images))
    np.testing.assert_allclose(dump["test_features"], expected.numpy(), **network_tolerance(reference, expected))
    np.testing.assert_array_equal(dump["weight"], reference.fc.weight.detach().numpy())
    np.testing.assert_array_equal(dump["bias"], reference.fc.bias.detach().numpy())
    provenance = json.loads((run / "provenance.json").read_text())
    assert [(c["epoch"], c["sha256"]) for c in provenance["checkpoints"]] == [
        (1, sha256(tv_files[0])),
        (2, sha256(tv_files[1])),
    ]
    collapse = (workdir / "results/external/runs/external/nclab-net/seed0/collapse.csv").read_text().splitlines()
    assert len(collapse) == 2 and collapse[1].startswith("nclab-net,0,5,")  # model, seed, epoch: one checkpoint
    tables = (workdir / "results/external/report/external/tables/provenance.tex").read_text()
    assert sha256(nclab_file) in tables and sha256(tv_files[1]) in tables
    macros = (workdir / "results/external/report/external/macros.tex").read_text()
    assert r"\newcommand{\ExtModels}{3 models}" in macros and "nclab-net: ours." in macros
    timm_file = workdir / "checkpoints/convnext_atto/model.safetensors"  # a folder: its weights file
    assert sha256(timm_file) in tables
    report = snakemake(workdir, "--report", "results/external/report.html", configfile="external.yaml")
    assert report.returncode == 0, report.stderr[-3000:]
    html = (workdir / "results/external/report.html").read_text()
    assert "Models trained elsewhere" in html and "nclab did not train them" in html
    for table in ("provenance", "checkpoints", "detectors", "layers"):
        assert f"results/external/report/external/tables/{table}.pdf" in html


@pytest.mark.workflow
def test_a_model_that_names_layers_has_collapse_and_detection_at_each_and_the_paper_reports_them(external_run):
    """tv-resnet18 names four layers: its layers.csv holds them and h at both checkpoints, h's NC measures equal
    collapse.csv's (the same features), the paper's external section reports them; nclab-net names none."""
    workdir, _ = external_run
    runs = workdir / "results/external/runs/external"
    table = pd.read_csv(runs / "tv-resnet18/seed0/layers.csv")
    per_layer = table[table["layer"] != "all"]
    assert list(dict.fromkeys(per_layer["layer"])) == ["conv1", "layer1", "layer2", "layer3", "h"]
    assert sorted(table["epoch"].unique()) == [1, 2] and set(table["ood"]) == {"photos", "noise"}
    collapse = pd.read_csv(runs / "tv-resnet18/seed0/collapse.csv").set_index("epoch")
    h = per_layer[per_layer["layer"] == "h"].groupby("epoch")["nc1"].first()
    assert (h == collapse.loc[h.index, "nc1"]).all()  # the same computation on the same float32 features
    assert not (runs / "nclab-net/seed0/layers.csv").exists()
    timm_layers = pd.read_csv(runs / "timm-convnext/seed0/layers.csv")  # layers: intermediates
    assert list(dict.fromkeys(timm_layers.query("layer != 'all'")["layer"])) == [
        *(f"stages.{i}" for i in range(4)),
        "h",
    ]
    layers = (workdir / "results/external/report/external/tables/layers.tex").read_text()
    assert r"\texttt{layer3}" in layers and "Multi-layer Mahalanobis, all layers" in layers
    pdf = workdir / "results/external/paper/paper.pdf"
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout.split())
    assert "At every depth." in text and "for tv-resnet18 (5 layers)" in text and "for timm-convnext (5 layers)" in text
