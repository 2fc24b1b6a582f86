"""Snakemake entry point: one OOD score, fitted on ID train features, on ID test and every OOD set."""

import numpy as np

from nclab.io import atomic_savez, epoch_file, load_dump, logged
from nclab.ood import score_dump

with logged(snakemake.log[0]):
    dump = load_dump(epoch_file(snakemake.input.dumps, snakemake.params.epoch, ".npz"))
    method = snakemake.wildcards.method
    scores = score_dump(dump, method, ["test", *snakemake.params.ood_sets], **snakemake.params.hyperparameters)
    for split, values in scores.items():
        print(
            f"{method} on {split}: not computed for a {dump['head']} head (its logits are not W h + b)"
            if np.isnan(values).all()
            else f"{method} on {split}: mean {values.mean():.4g}"
        )
    atomic_savez(snakemake.output[0], **scores)
