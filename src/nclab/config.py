"""Validation of a study configuration, before any job runs.

Structure and types come from the JSON schema (``schemas/config.schema.yaml``); the cross-key rules that a
schema cannot express (checkpoints within the schedule, dimensions against the network, the data) are checked
here.
Every message names the key at fault and, where there is a choice, the allowed values.
The schema is also the one place of every optional value's default (its ``default:``): a valid config gets
them filled in (:func:`fill_defaults`), so that no code repeats a default.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from nclab import data
from nclab.plan import INPUT_SIDES, INTERMEDIATES, SAFETENSORS_FILE, TIMM_PREFIX, feature_dim, longtail_grid

# Mappings whose key order means something: the order of the schedules in the paper's tables and figures.
# Every other mapping of the config is a set of named values.
ORDERED_MAPPINGS = {("schedules",)}


class ConfigError(ValueError):
    pass


def canonical(value: Any, path: tuple[str, ...] = ()) -> Any:
    """``value`` with the keys of every mapping sorted (recursively), except the order of ORDERED_MAPPINGS.

    Snakemake compares a job's params by their repr, so without this, two config files that differ only in the
    order of their lines, or a value moved to a second --configfile, would rerun every job (trainings included).
    """
    if isinstance(value, dict):
        keys = list(value) if path in ORDERED_MAPPINGS else sorted(value)
        return {key: canonical(value[key], (*path, key)) for key in keys}
    if isinstance(value, list):
        return [canonical(item, path) for item in value]
    return value


def make_canonical(config: dict) -> None:
    """Replace ``config``'s contents, in place (Snakemake's config object), by :func:`canonical` of them."""
    ordered = canonical(config)
    config.clear()
    config.update(ordered)


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def schema_errors(config: dict, schema: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    errors = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        if err.validator == "enum":
            errors.append(f"{_key(err.absolute_path)}: {err.instance!r} is not allowed; allowed: {err.validator_value}")
        elif err.validator in ("additionalProperties", "unevaluatedProperties") and err.validator_value is False:
            allowed = sorted(_properties(err.schema, schema))
            unknown = sorted(set(err.instance) - set(allowed))
            errors.append(f"{_key(err.absolute_path)}: unknown keys {unknown}; allowed: {allowed}")
        elif err.validator == "propertyNames":
            errors.append(f"{_key(err.absolute_path)}: key {err.instance!r} is not allowed ({err.message})")
        else:
            errors.append(f"{_key(err.absolute_path)}: {err.message}")
    return errors


def _referenced(schema: dict, root: dict) -> dict | None:
    """The schema that ``schema``'s ``$ref`` names (local references only: "#/$defs/name"), or None."""
    return root["$defs"][schema["$ref"].removeprefix("#/$defs/")] if "$ref" in schema else None


def _properties(schema: dict, root: dict) -> dict:
    """The named properties of ``schema``: its own and those of the schema it references, at any depth."""
    referenced = _referenced(schema, root)
    return {**(_properties(referenced, root) if referenced else {}), **schema.get("properties", {})}


def fill_defaults(instance: Any, schema: dict, root: dict | None = None) -> None:
    """Set, in place, every value the schema gives a ``default`` for and ``instance`` (valid) lacks, at every
    depth: the named properties of an object, and the values of a mapping with ``additionalProperties``."""
    root = schema if root is None else root
    if not isinstance(instance, dict):
        return
    for key, spec in _properties(schema, root).items():
        spec = {**(_referenced(spec, root) or {}), **spec}  # a default beside a $ref wins over the referenced one
        if key not in instance and "default" in spec:
            instance[key] = copy.deepcopy(spec["default"])
        if key in instance:
            fill_defaults(instance[key], spec, root)
    schema = _referenced(schema, root) or schema
    if isinstance(schema.get("additionalProperties"), dict):
        for key in set(instance) - set(schema.get("properties", {})):
            fill_defaults(instance[key], schema["additionalProperties"], root)


def data_errors(spec: dict) -> list[str]:
    """The in-distribution set, the OOD sets and what they need (data root, folders, a common format)."""
    errors, dataset = [], spec["dataset"]
    needing_root = [name for name in [dataset, *spec["ood_sets"]] if data.needs_root(name)]
    if needing_root and not spec["root"]:
        errors.append(f"data.root: required by {needing_root} (the folder holding, or receiving, their raw files)")
    for name in spec["ood_sets"]:
        if name == dataset:
            errors.append(f"data.ood_sets: {name!r} is the in-distribution dataset")
        elif name not in data.ood_candidates(dataset):
            errors.append(
                f"data.ood_sets: {name!r} does not match the format of {dataset!r}; "
                f"allowed: {data.ood_candidates(dataset)}"
            )
        if name in data.SYNTHETIC_OOD and name not in spec["synthetic"]:
            errors.append(f"data.synthetic.{name}: required by data.ood_sets")
        if name in data.FOLDER_OOD and name not in spec["folders"]:
            errors.append(f"data.folders.{name}: required by data.ood_sets (a local folder of images)")
    if dataset == data.SYNTHETIC_CIFAR and data.SYNTHETIC_CIFAR not in spec["synthetic"]:
        errors.append(f"data.synthetic.{data.SYNTHETIC_CIFAR}: required by data.dataset (its classes and sizes)")
    if dataset == data.IMAGENET_LT:
        errors += imagenet_lt_errors(spec.get("imagenet_lt"))
    return errors


def imagenet_lt_errors(spec: dict | None) -> list[str]:
    """ImageNet-LT needs the ImageNet folder and the folder of the three split lists."""
    if not spec or not spec.get("root") or not spec.get("lists"):
        return [
            "data.imagenet_lt: dataset 'imagenet_lt' needs root (the ImageNet folder holding train/ and val/) "
            "and lists (the folder of ImageNet_LT_train.txt, ImageNet_LT_val.txt, ImageNet_LT_test.txt)"
        ]
    errors = []
    if not Path(spec["root"]).is_dir():
        errors.append(f"data.imagenet_lt.root: folder {spec['root']} does not exist")
    missing = [str(p) for p in data.imagenet_lt_lists(spec["lists"]).values() if not p.is_file()]
    if missing:
        errors.append(f"data.imagenet_lt.lists: missing split lists {missing}")
    return errors


def schedule_errors(key: str, schedule: dict) -> list[str]:
    errors = []
    bad = [e for e in schedule["checkpoints"] if e > schedule["epochs"]]
    if bad:
        errors.append(f"{key}.checkpoints: epochs {bad} are beyond the schedule's {schedule['epochs']} epochs")
    if schedule["scheduler"] != "cosine" and not schedule.get("milestones"):
        errors.append(f"{key}.milestones: required for scheduler {schedule['scheduler']!r}")
    warmup = schedule.get("warmup_epochs", 0)
    if schedule["scheduler"] == "warmup_multistep" and not 0 < warmup < schedule["epochs"]:
        errors.append(
            f"{key}.warmup_epochs: scheduler 'warmup_multistep' needs 1..{schedule['epochs'] - 1} "
            f"warm-up epochs, got {warmup}"
        )
    elif schedule["scheduler"] != "warmup_multistep" and warmup:
        errors.append(f"{key}.warmup_epochs: only used by scheduler 'warmup_multistep'")
    return errors


def longtail_errors(config: dict) -> list[str]:
    spec, errors = config["longtail"], []
    errors += schedule_errors("longtail.schedule", spec["schedule"])
    if spec["profile"] == "given" and len(spec["ratios"]) != 1:
        errors.append(
            f"longtail.ratios: profile 'given' keeps the training set as it is, so it has one imbalance "
            f"ratio (ImageNet-LT: 256), got {spec['ratios']}"
        )
    if config["data"]["dataset"] == data.IMAGENET_LT and spec["profile"] != "given":
        errors.append(f"longtail.profile: ImageNet-LT is long-tailed already; use 'given', not {spec['profile']!r}")
    many, few = spec["shot_thresholds"]["many"], spec["shot_thresholds"]["few"]
    if few > many + 1:
        errors.append(
            f"longtail.shot_thresholds: few ({few}) must not exceed many + 1 ({many + 1}): a class "
            "cannot be both many- and few-shot"
        )
    dim = feature_dim(spec["model"]["arch"], spec["model"]["width"])
    num_classes = data.num_classes(config["data"])
    if "etf" in spec["losses"] and dim < num_classes:
        errors.append(
            f"longtail.losses: 'etf' needs a feature dimension >= the {num_classes} classes for a simplex "
            f"ETF; longtail.model gives {dim}"
        )
    if not longtail_grid(spec["ratios"], spec["losses"], spec["strategies"]):
        errors.append(
            "longtail.strategies: no strategy applies to the losses (proj and slerp move the classifier, "
            "which etf keeps fixed)"
        )
    return errors


def semantic_errors(config: dict) -> list[str]:
    errors = data_errors(config["data"])
    for name, schedule in config["schedules"].items():
        errors += schedule_errors(f"schedules.{name}", schedule)
    if "longtail" in config["studies"]:
        errors += longtail_errors(config)
    if "balanced" in config["studies"] and config["data"]["dataset"] == data.IMAGENET_LT:
        errors.append(
            "studies: 'balanced' needs a balanced training set; ImageNet-LT is long-tailed (use studies: [longtail])"
        )
    if "external" in config["studies"]:
        errors += external_errors(config)
    errors += input_size_errors(config)
    errors += detector_errors(config)
    if config["paper"]["headline_ood"] not in config["data"]["ood_sets"]:
        errors.append(
            f"paper.headline_ood: {config['paper']['headline_ood']!r} is not among data.ood_sets "
            f"{sorted(config['data']['ood_sets'])}"
        )
    return errors


def input_size_errors(config: dict) -> list[str]:
    """The networks that take one image size only (LeNet: 28x28) against the in-distribution images."""
    errors, side = [], data.image_size(config["data"])
    for study, key in (("balanced", "model"), ("longtail", "longtail.model")):
        section = config["model"] if study == "balanced" else config["longtail"]["model"]
        needed = INPUT_SIDES.get(section["arch"])
        if study in config["studies"] and needed and needed != side:
            errors.append(
                f"{key}.arch: {section['arch']} takes {needed}x{needed} images; data.dataset "
                f"{config['data']['dataset']!r} has {side}x{side}"
            )
    return errors


def external_errors(config: dict) -> list[str]:
    """The external models against the data: class count, channels, files present, epochs (the checks that need
    the network run in the feature job, before it reads any data: nclab.external)."""
    models = config["external"]["models"]
    if not models:
        return ["external.models: studies lists external, so name at least one model (docs/external.md)"]
    errors, spec = [], config["data"]
    classes, channels = data.num_classes(spec), data.channels(spec["dataset"])
    for name, model in models.items():
        key = f"external.models.{name}"
        if model["num_classes"] != classes:
            errors.append(
                f"{key}.num_classes: {model['num_classes']}, but data.dataset {spec['dataset']!r} has {classes} classes"
            )
        timm = model["architecture"].startswith(TIMM_PREFIX)
        for field in ("image_size", "mean", "std"):
            if model[field] is None and not timm:
                errors.append(f"{key}.{field}: required (only a timm model takes it from its data config)")
        if model["create_kwargs"] and not timm:
            errors.append(f"{key}.create_kwargs: only for a timm model (architecture timm:<name>)")
        if model["layers"] == INTERMEDIATES and not timm:
            errors.append(f"{key}.layers: intermediates only for a timm model; name the modules instead")
        for stat in ("mean", "std"):
            if model[stat] is not None and len(model[stat]) != channels:
                errors.append(
                    f"{key}.{stat}: {len(model[stat])} values, but data.dataset {spec['dataset']!r} has "
                    f"{channels}-channel images"
                )
        files = external_checkpoints(model)
        for position, path in enumerate(files):
            if not Path(path).is_file():
                errors.append(f"{key}.checkpoints[{position}]: checkpoint {path} not found")
        epochs = model["epochs"]
        if epochs is not None and (len(epochs) != len(files) or any(a >= b for a, b in zip(epochs, epochs[1:]))):
            errors.append(f"{key}.epochs: {epochs} must be increasing, one per checkpoint ({len(files)})")
    return errors


def external_checkpoints(model: dict) -> list[str]:
    """An external model's checkpoint files, in order (one or a list): a folder stands for the model.safetensors
    it holds, as timm and huggingface_hub save one."""
    files = model["checkpoints"]
    files = [files] if isinstance(files, str) else list(files)
    return [str(Path(f) / SAFETENSORS_FILE) if Path(f).is_dir() else f for f in files]  # absent: named as given


def detector_errors(config: dict) -> list[str]:
    """The detectors' hyperparameters against the networks and the data; the lists of detectors the paper and
    its figures show (those of them among ood.methods) must keep at least one."""
    errors, methods, hyper = [], config["ood"]["methods"], config["ood"]["hyperparameters"]
    dims = {
        "balanced": feature_dim(config["model"]["arch"], config["model"]["width"]),
        "longtail": feature_dim(config["longtail"]["model"]["arch"], config["longtail"]["model"]["width"]),
    }
    trained = [dims[study] for study in config["studies"] if study in dims]  # external networks: checked in the job
    dim = min(trained, default=None)  # the OOD scores serve every study's network
    limits = {("vim", "dim"): dim - 1, ("neco", "dim"): dim, ("vim_residual", "dim"): dim - 1} if dim else {}
    limits[("gen", "top_m")] = data.num_classes(config["data"])
    for (method, key), upper in limits.items():
        value = hyper.get(method, {}).get(key)
        if method in methods and value is not None and value > upper:  # its type and lower bound are the schema's
            what = "the class count" if key == "top_m" else f"feature dimension {dim}, the smallest of the networks"
            errors.append(f"ood.hyperparameters.{method}.{key}: {value!r} must be an integer in 1..{upper} ({what})")
    if unknown := [m for m in config["ood"]["trajectory"]["methods"] or [] if m not in methods]:
        errors.append(f"ood.trajectory.methods: {unknown} are not among ood.methods {methods}")
    for key, listed in (
        ("figures.histograms.methods", config["figures"]["histograms"]["methods"]),
        ("paper.headline_methods", config["paper"]["headline_methods"]),
    ):
        if not set(listed) & set(methods):
            errors.append(
                f"{key}: none of {listed} is among ood.methods {methods}; list some of these (the figure or "
                "table shows those of its list that ood.methods runs)"
            )
    return errors


@functools.lru_cache(maxsize=4)
def load_schema(schema_path: Path) -> dict:
    return yaml.safe_load(schema_path.read_text())


def validate(config: dict, schema_path: str | Path) -> None:
    """Raise :class:`ConfigError` listing every problem of ``config``; fill in the schema's defaults where it
    has none."""
    schema = load_schema(Path(schema_path))
    errors = schema_errors(config, schema)
    if not errors:
        fill_defaults(config, schema)
        errors = semantic_errors(config)
    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))


REPOSITORY = Path(__file__).resolve().parents[2]  # src/nclab/config.py -> the workflow's folder


def default_config() -> dict:
    """The repository's config.yaml as the workflow sees it: validated, with the schema's defaults filled in."""
    config = yaml.safe_load((REPOSITORY / "config.yaml").read_text())
    validate(config, REPOSITORY / "schemas" / "config.schema.yaml")
    return config
