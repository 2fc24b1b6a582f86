"""Snakemake entry point: Neural Collapse and OOD detection at the layers a model trained elsewhere names, at
every one of its checkpoints. Every checkpoint and every named layer is checked before any data is read."""

import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from nclab import data, depth, training
from nclab.external import extract_layers, intermediate_names, load_external, named_layers
from nclab.io import atomic_path, logged
from nclab.plan import INTERMEDIATES

LAST_LAYER = "h"  # the input of the final linear layer, the penultimate feature of the dumps

with logged(snakemake.log[0]):
    p = snakemake.params
    device = training.resolve_device(p.device)  # no CUDA for a cuda run: stop before reading
    torch.set_num_threads(snakemake.threads)
    threadpool_limits(snakemake.threads)  # numpy's BLAS too: the analysis runs beside other jobs
    files, epochs = p.model["checkpoints"], p.model["epochs"]
    in_channels, key = data.channels(p.dataset), f"external.models.{p.name}.layers"

    def layers_of(model):
        """The entry's named modules, or the names of a timm model's intermediates."""
        return intermediate_names(model, key) if p.layers == INTERMEDIATES else named_layers(model, p.layers, key)

    for position, path in enumerate(files):
        layers_of(load_external(p.name, p.model, path, in_channels, position))
    train_set, test_set, num_classes = data.load_id(snakemake.input.data)
    splits = {"train": train_set, "test": test_set}
    splits.update({name: data.load_ood(path) for name, path in zip(p.ood_sets, snakemake.input.ood)})
    named = p.layers if p.layers == INTERMEDIATES else ", ".join(p.layers)
    print(f"{p.name}: layers {named} and {LAST_LAYER}, pooled to at most {p.grid}x{p.grid}")
    if p.final_only:
        print(f"at the final checkpoint only: {', '.join(p.final_only)}")
    rows = []
    for position, (epoch, path) in enumerate(zip(epochs, files)):
        model = load_external(p.name, p.model, path, in_channels, position)
        model.network.to(device)
        modules = layers_of(model)
        by_depth = {}
        for split, images in splits.items():
            h, _, found = extract_layers(model, images.images, modules, p.grid)
            by_depth[split] = {**found, LAST_LAYER: h}
        skipped = depth.deferred(p.final_only, epoch, epochs)
        found = depth.layer_rows(by_depth, train_set.labels, num_classes, p.ood_sets, p.knn_k, skipped)
        rows += [{"model": p.name, "seed": 0, "epoch": epoch, **row} for row in found]
        print(f"epoch {epoch}: NC1 by depth: {depth.nc1_by_depth(found)}")
    with atomic_path(snakemake.output.table) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.10g")
