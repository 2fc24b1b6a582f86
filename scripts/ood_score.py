"""Snakemake entry point: one OOD score, fitted on ID train features, on ID test and every OOD set."""

import numpy as np

from nclab.io import load_dump, atomic_savez, logged
from nclab.ood import Split, fit_score

with logged(snakemake.log[0]):
    dump = load_dump(snakemake.input.dump)
    train = Split(dump["train_features"], dump["train_logits"], dump["train_labels"])
    method = snakemake.wildcards.method
    scorer = fit_score(method, train, dump["weight"], dump["bias"], **snakemake.params.hyperparameters)
    scores = {}
    for split in ["test", *snakemake.params.ood_sets]:
        scores[split] = scorer(Split(dump[f"{split}_features"], dump[f"{split}_logits"]))
        if not np.all(np.isfinite(scores[split])):
            raise ValueError(f"{method} gives non-finite scores on {split}")
        print(f"{method} on {split}: mean {scores[split].mean():.4g}")
    atomic_savez(snakemake.output[0], **scores)
