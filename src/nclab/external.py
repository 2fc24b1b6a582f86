"""Models trained elsewhere: their checkpoints, read safely, their penultimate features, and the outputs of the
modules their config entry names as ``layers`` (the depth analysis, docs/methods.md section 9).

An external model (config ``external.models``, docs/external.md) is an architecture, either any torchvision
classification model by name (``resnet18``, ``wide_resnet50_2``, ``vit_b_16``, ...), any timm model
(``timm:convnext_atto``, built by ``timm.create_model`` with the entry's ``create_kwargs``) or one of nclab's
networks (``nclab.resnet18``, ``nclab.resnet32``, ``nclab.resnet50``, linear head), with its checkpoints: ``.pt``
files read without pickle, ``.safetensors`` files, or folders holding ``model.safetensors`` as timm and
huggingface_hub save them. The features h are the input of the model's final linear layer, W and b that layer's
weight and bias: timm's ``get_classifier()``, otherwise the one ``nn.Linear`` with ``num_classes`` outputs in the
module tree, or the module named by ``final_layer``. The logits are the model's output, which must equal W h + b.

Preprocessing: uint8 images scaled to [0, 1], resized to ``image_size`` (bilinear, antialiased) where the
dataset's side differs, then normalised with ``mean`` and ``std``; a timm model's own data config
(``timm.data.resolve_model_data_config``) gives whichever of the three its entry leaves out.

Every check that needs the network (the file's format, its keys, the final layer, the image size) runs in
:func:`load_external` before any data is read, and its error names the config key and the file at fault.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from nclab.features import pooled, pooled_outputs
from nclab.models import build_model
from nclab.plan import INTERMEDIATES, SAFETENSORS_FILE, TIMM_PREFIX
from nclab.torchvision_compat import import_torchvision

NCLAB_PREFIX = "nclab."
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DistributedDataParallel, torch.compile
NCLAB_WIDTHS = {"resnet18": 64, "resnet32": 16, "resnet50": 64}  # the standard networks' first-stage widths


class ExternalModelError(ValueError):
    """A checkpoint or setting of an external model that cannot be used; the message names the key and file."""


@dataclass
class ExternalModel:
    """The network with one checkpoint's weights loaded, its final linear layer, and the preprocessing."""

    name: str
    network: nn.Module
    final_layer: nn.Linear
    image_size: int
    mean: torch.Tensor
    std: torch.Tensor


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: str | Path, key: str) -> dict[str, torch.Tensor]:
    """The weights in ``path``: a state dict, or a checkpoint holding one under ``state_dict`` or ``model``,
    read with ``weights_only=True`` (no code runs), less a wrapper's prefix such as ``module.``."""
    path = Path(path)
    if path.is_dir():  # a model folder saved by timm or huggingface_hub
        path = path / SAFETENSORS_FILE
    if not path.is_file():
        raise ExternalModelError(f"{key}: checkpoint {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return strip_wrapper(load_file(path, device="cpu"))
        except Exception as err:  # a truncated or foreign file
            raise ExternalModelError(f"{key}: cannot read safetensors file {path}: {err}") from err
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ExternalModelError(
            f"{key}: {path} needs pickle to load (it holds more than tensors, e.g. a whole model saved with "
            "torch.save(model)), and nclab loads only with weights_only=True; save model.state_dict() instead. "
            f"torch said: {str(err).splitlines()[0]}"
        ) from err
    except Exception as err:  # truncated or foreign files raise several types
        raise ExternalModelError(f"{key}: cannot read checkpoint {path}: {err}") from err
    if isinstance(content, Mapping):
        for entry in ("state_dict", "model"):
            if isinstance(content.get(entry), Mapping):
                content = content[entry]
                break
    if (
        not isinstance(content, Mapping)
        or not content
        or not all(isinstance(v, torch.Tensor) for v in content.values())
    ):
        raise ExternalModelError(
            f"{key}: {path} holds no state dict (a mapping of parameter names to tensors, alone or under a "
            "'state_dict' or 'model' entry)"
        )
    return strip_wrapper(dict(content))


def strip_wrapper(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` less a prefix that every key holds, left by a wrapper (DataParallel, torch.compile)."""
    for prefix in WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def import_timm() -> ModuleType:
    """timm, imported after nclab's torchvision shim (timm imports torchvision)."""
    import_torchvision()
    import timm

    return timm


def hub_config(checkpoint: str | Path) -> dict[str, Any]:
    """The preprocessing a model folder's config.json records (its ``pretrained_cfg``: input size, mean, std),
    for a checkpoint that is such a folder's model.safetensors; empty otherwise."""
    path = Path(checkpoint)
    config = (path if path.is_dir() else path.parent) / "config.json"
    if (path.is_dir() or path.name == SAFETENSORS_FILE) and config.is_file():
        return dict(json.loads(config.read_text()).get("pretrained_cfg") or {})
    return {}


def build_timm(
    spec: Mapping[str, Any], in_channels: int, key: str, pretrained_cfg: Mapping[str, Any] | None = None
) -> nn.Module:
    """``timm.create_model`` of the name after ``timm:``, untrained, with the entry's class count, the data's
    channels and its ``create_kwargs``; ``pretrained_cfg``: a model folder's recorded preprocessing."""
    timm = import_timm()
    name = spec["architecture"][len(TIMM_PREFIX) :]
    if not timm.is_model(name):
        raise ExternalModelError(
            f"{key}.architecture: {name!r} is not a timm model (timm {timm.__version__}: "
            f"{len(timm.list_models())} models, e.g. resnet18, convnext_atto, vit_tiny_patch16_224)"
        )
    arguments = {"num_classes": spec["num_classes"], "in_chans": in_channels, **(spec.get("create_kwargs") or {})}
    if pretrained_cfg:
        arguments["pretrained_cfg_overlay"] = dict(pretrained_cfg)
    try:
        return timm.create_model(name, pretrained=False, **arguments)
    except Exception as err:
        raise ExternalModelError(f"{key}.create_kwargs: timm cannot build {name!r} with {arguments}: {err}") from err


def build_network(
    spec: Mapping[str, Any], in_channels: int, key: str, pretrained_cfg: Mapping[str, Any] | None = None
) -> nn.Module:
    """The untrained network of ``spec["architecture"]`` with ``spec["num_classes"]`` outputs."""
    arch, num_classes = spec["architecture"], spec["num_classes"]
    if arch.startswith(TIMM_PREFIX):
        return build_timm(spec, in_channels, key, pretrained_cfg)
    if arch.startswith(NCLAB_PREFIX):
        name = arch[len(NCLAB_PREFIX) :]
        if name not in NCLAB_WIDTHS:
            raise ExternalModelError(
                f"{key}.architecture: unknown nclab network {arch!r}; allowed: "
                f"{[NCLAB_PREFIX + n for n in NCLAB_WIDTHS]}"
            )
        width = spec.get("width") or NCLAB_WIDTHS[name]
        return build_model(name, num_classes=num_classes, in_channels=in_channels, width=width)
    tv = import_torchvision()
    known = tv.models.list_models(module=tv.models)
    if arch not in known:
        raise ExternalModelError(
            f"{key}.architecture: {arch!r} is neither a torchvision classification model (e.g. resnet18, "
            f"wide_resnet50_2, densenet121, vit_b_16; {len(known)} in all), a timm model ({TIMM_PREFIX}<name>) "
            f"nor one of nclab's ({', '.join(NCLAB_PREFIX + n for n in NCLAB_WIDTHS)})"
        )
    try:
        return tv.models.get_model_builder(arch)(weights=None, num_classes=num_classes)
    except Exception as err:
        raise ExternalModelError(f"{key}: torchvision cannot build {arch!r}: {err}") from err


def final_linear(network: nn.Module, spec: Mapping[str, Any], key: str) -> nn.Linear:
    """The layer whose input is the penultimate feature: ``spec["final_layer"]`` if given, otherwise the one
    ``nn.Linear`` with ``num_classes`` outputs; for a timm model, its ``get_classifier()``."""
    modules = dict(network.named_modules())
    if spec["architecture"].startswith(TIMM_PREFIX) and not spec.get("final_layer"):
        head = network.get_classifier()
        if not isinstance(head, nn.Linear):
            raise ExternalModelError(
                f"{key}.architecture: the classifier of {spec['architecture']} (get_classifier()) is a "
                f"{type(head).__name__}, not a linear layer, so its logits are not W h + b; name a linear layer "
                f"whose input is the feature with {key}.final_layer"
            )
        return head
    if spec.get("final_layer"):
        layer = modules.get(spec["final_layer"])
        if not isinstance(layer, nn.Linear):
            linear = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
            raise ExternalModelError(
                f"{key}.final_layer: {spec['final_layer']!r} is not a linear layer of {spec['architecture']} "
                f"(its linear layers: {linear or 'none'})"
            )
        return layer
    candidates = [n for n, m in modules.items() if isinstance(m, nn.Linear) and m.out_features == spec["num_classes"]]
    if len(candidates) != 1:
        found = "none" if not candidates else ", ".join(candidates)
        raise ExternalModelError(
            f"{key}: no final linear layer found in {spec['architecture']}: nn.Linear layers with "
            f"{spec['num_classes']} outputs: {found}. Name the one whose input is the feature with "
            f"{key}.final_layer"
        )
    return modules[candidates[0]]


def load_weights(network: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path, key: str) -> None:
    """Every weight of the checkpoint into ``network``: the same keys, the same shapes."""
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ExternalModelError(
            f"{key}: the keys of {path} do not match the architecture ({len(missing)} missing, first: "
            f"{missing[:5]}; {len(unexpected)} unexpected, first: {unexpected[:5]}); check "
            f"{key.rsplit('.', 1)[0]}.architecture"
        )
    wrong = [
        f"{k}: {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model"
        for k, v in expected.items()
        if state[k].shape != v.shape
    ]
    if wrong:
        raise ExternalModelError(
            f"{key}: {path} has other shapes than the architecture with the configured num_classes "
            f"({len(wrong)} tensors, first: {wrong[:3]})"
        )
    network.load_state_dict(state)


@torch.no_grad()
def check_input(model: ExternalModel, in_channels: int, key: str) -> None:
    """One image through the network: it must take ``image_size`` and give logits equal to W h + b."""
    model.network.eval()
    x = torch.zeros(2, in_channels, model.image_size, model.image_size)
    try:
        logits, features = forward(model, x)
    except Exception as err:
        raise ExternalModelError(
            f"{key}.image_size: {model.network.__class__.__name__} cannot take {in_channels}x{model.image_size}"
            f"x{model.image_size} images: {str(err).splitlines()[0]}"
        ) from err
    direct = model.final_layer(features)
    if logits.shape != direct.shape or not torch.allclose(logits, direct, atol=1e-4, rtol=1e-4):
        raise ExternalModelError(
            f"{key}.final_layer: the model's output is not its final linear layer's output: the layer found is "
            "not the last one; name it with final_layer"
        )


def forward(model: ExternalModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and penultimate features (the final linear layer's input, flattened) of a normalised batch."""
    captured: list[torch.Tensor] = []
    hook = model.final_layer.register_forward_pre_hook(lambda _, inputs: captured.append(inputs[0]))
    try:
        logits = model.network(x)
    finally:
        hook.remove()
    return logits, captured[-1].flatten(1)


def load_external(
    name: str, spec: Mapping[str, Any], checkpoint: str | Path, in_channels: int, position: int = 0
) -> ExternalModel:
    """External model ``name`` with ``checkpoint``'s weights, every check of this module passed."""
    key = f"external.models.{name}"
    state = read_state_dict(checkpoint, f"{key}.checkpoints[{position}]")
    network = build_network(spec, in_channels, key, hub_config(checkpoint))
    layer = final_linear(network, spec, key)
    load_weights(network, state, checkpoint, f"{key}.checkpoints[{position}]")
    size, mean, std = preprocessing(network, spec, in_channels, key)
    model = ExternalModel(
        name,
        network,
        layer,
        size,
        torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1),
        torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1),
    )
    check_input(model, in_channels, key)
    return model


def preprocessing(
    network: nn.Module, spec: Mapping[str, Any], in_channels: int, key: str
) -> tuple[int, list[float], list[float]]:
    """The side the network takes and the normalisation's mean and std: the entry's, or, for whichever it leaves
    out, a timm model's own data config (``timm.data.resolve_model_data_config``)."""
    values = {k: spec.get(k) for k in ("image_size", "mean", "std")}
    if spec["architecture"].startswith(TIMM_PREFIX) and None in values.values():
        data_config = import_timm().data.resolve_model_data_config(network)
        defaults = {"image_size": data_config["input_size"][-1], "mean": data_config["mean"], "std": data_config["std"]}
        values = {k: defaults[k] if v is None else v for k, v in values.items()}
    for stat in ("mean", "std"):
        if len(values[stat]) != in_channels:
            raise ExternalModelError(
                f"{key}.{stat}: {list(values[stat])} has {len(values[stat])} values (the model's data config gives "
                f"what the entry leaves out), but the images have {in_channels} channels; set {key}.{stat}"
            )
    return int(values["image_size"]), list(values["mean"]), list(values["std"])


def preprocess(images: torch.Tensor, model: ExternalModel) -> torch.Tensor:
    """uint8 images (N, C, H, W) to the network's input: [0, 1], resized to image_size, normalised."""
    x = images.float() / 255
    if x.shape[-1] != model.image_size or x.shape[-2] != model.image_size:
        size = (model.image_size, model.image_size)
        x = nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return (x - model.mean.to(x.device)) / model.std.to(x.device)


def intermediate_names(model: ExternalModel, key: str) -> list[str]:
    """The layers of ``layers: intermediates``: the modules of a timm model's ``feature_info``, whose outputs
    ``forward_intermediates`` returns (as maps: a ViT's tokens laid out on their grid)."""
    network = model.network
    if not hasattr(network, "forward_intermediates") or not getattr(network, "feature_info", None):
        raise ExternalModelError(
            f"{key}: {INTERMEDIATES!r} needs a timm model with forward_intermediates and feature_info; name the "
            "modules instead"
        )
    return [info["module"] for info in network.feature_info]


def named_layers(model: ExternalModel, names: Sequence[str], key: str) -> dict[str, nn.Module]:
    """The modules that the config entry's ``layers`` (``key``) name, by name from the input side; the error names
    the first one that is not a module of the network, and lists the network's top-level modules."""
    modules = dict(model.network.named_modules())
    for index, name in enumerate(names):
        if not name or name not in modules:
            top = ", ".join(child for child, _ in model.network.named_children())
            raise ExternalModelError(
                f"{key}[{index}]: {name!r} is not a module of the network; its top-level modules: {top} (nested "
                "ones are named with dots, as named_modules() names them)"
            )
    return {name: modules[name] for name in names}


@torch.no_grad()
def extract_layers(
    model: ExternalModel,
    images: np.ndarray,
    layers: Mapping[str, nn.Module] | Sequence[str],
    grid: int,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Penultimate features, logits and the outputs of ``layers`` (by name, captured by forward hooks, or, given
    :func:`intermediate_names`, timm's ``forward_intermediates`` in a second pass; pooled by
    :func:`nclab.features.pooled`) of uint8 images, in fp32, network in eval mode, on the device that holds it; the
    arrays come back to the CPU."""
    model.network.eval()
    device = next(model.network.parameters()).device
    intermediates = not isinstance(layers, Mapping)
    from_intermediates: dict[str, list[np.ndarray]] = {name: [] for name in layers} if intermediates else {}

    def check(name: str, output: object) -> None:
        if not isinstance(output, torch.Tensor) or output.ndim not in (2, 4):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ExternalModelError(
                f"external.models.{model.name}.layers: {name!r} outputs {shape}; a layer must output feature "
                "maps (N, C, H, W) or vectors (N, D)"
            )

    features, logits = [], []
    with pooled_outputs({} if intermediates else layers, grid, check) as hooked:
        for start in range(0, len(images), batch_size):
            x = preprocess(torch.from_numpy(images[start : start + batch_size]).to(device), model)
            z, h = forward(model, x)
            features.append(h.float().cpu().numpy())
            logits.append(z.float().cpu().numpy())
            if intermediates:
                outputs = model.network.forward_intermediates(x, intermediates_only=True, output_fmt="NCHW")
                for name, output in zip(layers, outputs, strict=True):
                    from_intermediates[name].append(pooled(output, grid))
    found = {name: np.concatenate(parts) for name, parts in (from_intermediates or hooked).items()}
    return np.concatenate(features), np.concatenate(logits), found


def extract(model: ExternalModel, images: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features and logits (fp32) of uint8 images (:func:`extract_layers` without layers)."""
    features, logits, _ = extract_layers(model, images, {}, 1, batch_size)
    return features, logits
