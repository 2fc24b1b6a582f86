"""Snakemake entry point: Neural Collapse and OOD detection at every depth, at every checkpoint of one run."""

import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from nclab import data, depth, layers, training
from nclab.features import load_checkpoint
from nclab.io import atomic_path, epoch_file, logged
from nclab.models import build_model

with logged(snakemake.log[0]):
    p = snakemake.params
    device = training.resolve_device(p.device)  # no CUDA for a cuda run: stop before reading
    torch.set_num_threads(snakemake.threads)
    threadpool_limits(snakemake.threads)  # numpy's BLAS too: the analysis runs beside other jobs
    train_set, test_set, num_classes = data.load_id(snakemake.input.data)
    splits = {"train": train_set, "test": test_set}
    splits.update({name: data.load_ood(path) for name, path in zip(p.ood_sets, snakemake.input.ood)})
    model = build_model(num_classes=num_classes, in_channels=train_set.images.shape[1], **p.model).to(device)
    print(f"layers: the stem and every {p.granularity}, pooled to at most {p.grid}x{p.grid}")
    if p.final_only:
        print(f"at the final checkpoint only: {', '.join(p.final_only)}")
    rows = []
    for epoch in p.epochs:
        checkpoint = load_checkpoint(epoch_file(snakemake.input.checkpoints, epoch, ".pt"))
        model.load_state_dict(checkpoint["state_dict"])
        by_depth = {
            split: layers.layer_features(
                model, images.images, checkpoint["mean"], checkpoint["std"], p.granularity, p.grid
            )[0]
            for split, images in splits.items()
        }
        skipped = depth.deferred(p.final_only, epoch, p.epochs)
        found = depth.layer_rows(by_depth, train_set.labels, num_classes, p.ood_sets, p.knn_k, skipped)
        rows += [{**p.run_keys, "seed": p.seed, "epoch": epoch, **row} for row in found]
        print(f"epoch {epoch}: NC1 by depth: {depth.nc1_by_depth(found)}")
    with atomic_path(snakemake.output.table) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.10g")
