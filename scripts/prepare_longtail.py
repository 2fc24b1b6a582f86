"""Snakemake entry point: the long-tailed training subset of one imbalance ratio (test set kept balanced)."""

import numpy as np

from nclab import data, longtail
from nclab.io import logged

with logged(snakemake.log[0]):
    p = snakemake.params
    train, test, num_classes = data.load_id(snakemake.input.data)
    subset, indices = longtail.longtail_subset(train, num_classes, p.ratio, p.profile, p.seed)
    data.save_id(snakemake.output[0], subset, test, num_classes, train_indices=indices)
    counts = np.bincount(subset.labels, minlength=num_classes)
    print(
        f"{p.profile} profile, IR {p.ratio:g}: {len(indices)} of {len(train.labels)} training images; "
        f"per class {counts.tolist()}"
    )
