"""Snakemake entry point: features and logits of every split at every checkpoint of a model trained elsewhere,
and where its checkpoints came from (paths, SHA-256). Every checkpoint is checked before any data is read."""

import json

import numpy as np
import torch

from nclab import data, training
from nclab.external import extract, load_external, sha256
from nclab.io import atomic_folder, atomic_savez, atomic_write_text, epoch_file, logged

with logged(snakemake.log[0]):
    p = snakemake.params
    device = training.resolve_device(p.device)  # no CUDA for a cuda run: stop before anything else
    torch.set_num_threads(snakemake.threads)
    files, epochs = p.model["checkpoints"], p.model["epochs"]
    in_channels = data.channels(p.dataset)
    for position, path in enumerate(files):  # every check of every checkpoint, before the long work
        load_external(p.name, p.model, path, in_channels, position)
    print(
        f"{p.name}: {len(files)} checkpoints of {p.model['architecture']} checked; extracting on {device} "
        f"({training.device_name(device)}), fp32"
    )
    train_set, test_set, _ = data.load_id(snakemake.input.data)
    splits = {"train": train_set, "test": test_set}
    splits.update({name: data.load_ood(path) for name, path in zip(p.ood_sets, snakemake.input.ood)})
    with atomic_folder(snakemake.output.dumps) as dumps:
        for position, (epoch, path) in enumerate(zip(epochs, files)):
            model = load_external(p.name, p.model, path, in_channels, position)
            model.network.to(device)
            layer = model.final_layer
            arrays = {"weight": layer.weight.detach().cpu().numpy().copy(), "head": np.array("linear")}
            arrays["bias"] = (
                layer.bias.detach().cpu().numpy().copy() if layer.bias is not None else np.zeros(layer.out_features)
            )
            for split, images in splits.items():
                features, logits = extract(model, images.images)
                arrays.update(
                    {f"{split}_features": features, f"{split}_logits": logits, f"{split}_labels": images.labels}
                )
            atomic_savez(epoch_file(dumps, epoch, ".npz"), **arrays)
            print(f"epoch {epoch}: {arrays['train_features'].shape[1]}-dim features")
    provenance = {
        "model": p.name,
        "architecture": p.model["architecture"],
        "checkpoints": [{"epoch": e, "path": f, "sha256": sha256(f)} for e, f in zip(epochs, files)],
    }
    atomic_write_text(snakemake.output.provenance, json.dumps(provenance, indent=1) + "\n")
