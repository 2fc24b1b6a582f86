"""timm models and safetensors checkpoints as models trained elsewhere (nclab.external, docs/external.md): random
timm models saved locally as .pth, .safetensors and a model folder; their features and logits equal timm's own
forward_head(forward_features(x), pre_logits=True) and forward; their layers equal forward_intermediates'; every
refusal names the key and the file."""

import copy

import numpy as np
import pytest
import torch
from conftest import ROOT, data_seed
from external_checkpoints import NCLAB, TIMM_MODELS, save_nclab_checkpoint, save_timm, timm_entry, timm_model
from precision import float32_tolerance, layer_sums
from test_external import external_config

from nclab.config import ConfigError, validate
from nclab.external import (
    ExternalModelError,
    extract,
    extract_layers,
    final_linear,
    import_timm,
    intermediate_names,
    load_external,
    preprocess,
)
from nclab.features import pool
from nclab.plan import INTERMEDIATES, SAFETENSORS_FILE

IMAGES = np.random.default_rng(data_seed(3)).integers(0, 256, (10, 3, 32, 32), dtype=np.uint8)
SCHEMA_PATH = "schemas/config.schema.yaml"


def tolerance(model: torch.nn.Module, expected: torch.Tensor) -> dict:
    """Two float32 forward passes of ``model`` on different batches: float32 rounding of its layers' sums."""
    return float32_tolerance(expected.detach(), sums=2 * layer_sums(model))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors", ""], ids=["pth", "safetensors", "folder"])
@pytest.mark.parametrize("name", TIMM_MODELS)
def test_features_and_logits_are_timms_pre_logits_and_output(tmp_path, name, suffix):
    reference = timm_model(name)
    path = save_timm(reference, tmp_path / f"model{suffix}")
    model = load_external("mine", timm_entry(name, str(path)), path, 3)
    features, logits = extract(model, IMAGES, batch_size=4)
    with torch.no_grad():
        x = preprocess(torch.from_numpy(IMAGES), model)
        expected = reference.forward_head(reference.forward_features(x), pre_logits=True)
        expected_logits = reference(x)
    np.testing.assert_allclose(features, expected.numpy(), **tolerance(reference, expected))
    np.testing.assert_allclose(logits, expected_logits.numpy(), **tolerance(reference, expected_logits))
    head = reference.get_classifier()
    assert model.final_layer.weight.equal(head.weight) and model.final_layer.bias.equal(head.bias)
    if suffix == "":  # the folder's config.json gives the normalisation the entry leaves out
        assert model.mean.flatten().tolist() == [0.25, 0.5, 0.75]
        assert model.std.flatten().tolist() == pytest.approx([0.2, 0.3, 0.4])  # float32 of the recorded values


def test_the_preprocessing_the_entry_leaves_out_is_the_models_data_config(tmp_path):
    path = save_timm(timm_model("convnext_atto"), tmp_path / "model.safetensors")
    entry = {**timm_entry("convnext_atto", str(path)), "image_size": None}
    model = load_external("mine", entry, path, 3)
    assert model.image_size == 224  # timm's data config for convnext_atto: 3 x 224 x 224, ImageNet's statistics
    assert model.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    own = load_external("mine", {**entry, "image_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3}, path, 3)
    assert own.image_size == 32 and own.std.flatten().tolist() == [0.25] * 3


def test_intermediates_are_forward_intermediates_pooled(tmp_path):
    reference = timm_model("vit_tiny_patch16_224")
    path = save_timm(reference, tmp_path / "vit.safetensors")
    model = load_external("mine", timm_entry("vit_tiny_patch16_224", str(path)), path, 3)
    names = intermediate_names(model, "key")
    assert names == [f"blocks.{i}" for i in range(12)]
    features, _, found = extract_layers(model, IMAGES, names, grid=2, batch_size=4)
    with torch.no_grad():
        outputs = reference.forward_intermediates(preprocess(torch.from_numpy(IMAGES), model), intermediates_only=True)
    for name, output in zip(names, outputs, strict=True):
        expected = pool(output, 2)  # tokens on their 4 x 4 grid, pooled to 2 x 2: 192 x 4 values
        assert found[name].shape == (10, 192 * 4)
        np.testing.assert_allclose(found[name], expected.numpy(), **tolerance(reference, expected))
    assert np.array_equal(features, extract(model, IMAGES, batch_size=4)[0])


def error_of(tmp_path, entry: dict, checkpoint) -> str:
    with pytest.raises(ExternalModelError) as caught:
        load_external("mine", entry, checkpoint, 3)
    return str(caught.value)


def test_refusals_name_the_key_and_the_file(tmp_path):
    path = save_timm(timm_model("resnet18"), tmp_path / "model.safetensors")
    entry = timm_entry("resnet18", str(path))
    message = error_of(tmp_path, {**entry, "architecture": "timm:resnet19"}, path)
    assert message.startswith("external.models.mine.architecture: 'resnet19' is not a timm model")
    message = error_of(tmp_path, {**entry, "create_kwargs": {"no_such_argument": 1}}, path)
    assert message.startswith("external.models.mine.create_kwargs: timm cannot build 'resnet18'")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    message = error_of(tmp_path, entry, broken)
    assert message.startswith(f"external.models.mine.checkpoints[0]: cannot read safetensors file {broken}")
    folder = tmp_path / "empty-folder"
    folder.mkdir()
    message = error_of(tmp_path, entry, folder)
    assert message == f"external.models.mine.checkpoints[0]: checkpoint {folder / SAFETENSORS_FILE} not found"
    other = save_timm(timm_model("convnext_atto"), tmp_path / "convnext.safetensors")
    message = error_of(tmp_path, entry, other)
    assert message.startswith(f"external.models.mine.checkpoints[0]: the keys of {other} do not match")


def test_grey_images_need_the_entrys_own_normalisation(tmp_path):
    """A timm model's data config gives 3-channel statistics: with 1-channel images the entry must set its own."""
    torch.manual_seed(0)
    grey = import_timm().create_model("resnet18", pretrained=False, num_classes=10, in_chans=1)
    path = save_timm(grey, tmp_path / "grey.safetensors")
    entry = {**timm_entry("resnet18", str(path)), "mean": None, "std": [0.3]}
    with pytest.raises(ExternalModelError) as caught:
        load_external("mine", entry, path, 1)
    assert str(caught.value).startswith("external.models.mine.mean: [0.485, 0.456, 0.406] has 3 values")
    model = load_external("mine", {**entry, "mean": [0.5]}, path, 1)
    assert model.mean.flatten().tolist() == [0.5]


def test_a_head_that_is_not_linear_is_refused(tmp_path):
    reference = timm_model("resnet18")
    path = save_timm(reference, tmp_path / "model.safetensors")
    entry = timm_entry("resnet18", str(path))
    model = load_external("mine", entry, path, 3)
    model.network.reset_classifier(0)  # an Identity head: no W, b
    with pytest.raises(ExternalModelError, match=r"get_classifier\(\)\) is a Identity, not a linear layer"):
        final_linear(model.network, entry, "external.models.mine")


def test_intermediates_of_a_model_without_them_are_refused(tmp_path):
    path = save_nclab_checkpoint(tmp_path / "nclab.pt")
    model = load_external("mine", NCLAB, path, 3)
    with pytest.raises(ExternalModelError, match="'intermediates' needs a timm model with forward_intermediates"):
        intermediate_names(model, "external.models.mine.layers")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"image_size": None}, "external.models.mine.image_size: required (only a timm model takes it"),
        ({"create_kwargs": {"img_size": 32}}, "external.models.mine.create_kwargs: only for a timm model"),
        ({"layers": INTERMEDIATES}, "external.models.mine.layers: intermediates only for a timm model"),
    ],
)
def test_config_errors_of_timm_keys_name_the_key_before_any_job(change, message):
    with pytest.raises(ConfigError) as caught:
        validate(copy.deepcopy(external_config(**change)), ROOT / SCHEMA_PATH)
    assert message in str(caught.value)
