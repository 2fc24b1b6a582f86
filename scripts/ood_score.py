"""Snakemake entry point: every configured OOD detector, each fitted on the ID training split of the run's final
dump (loaded once), on ID test and every OOD set; one score file per detector."""

import time

import numpy as np

from nclab.io import atomic_savez, epoch_file, load_dump, logged
from nclab.ood import score_dump

with logged(snakemake.log[0]):
    dump = load_dump(epoch_file(snakemake.input.dumps, snakemake.params.epoch, ".npz"))
    splits = ["test", *snakemake.params.ood_sets]
    for (method, hyper), path in zip(snakemake.params.hyperparameters.items(), snakemake.output, strict=True):
        assert path.endswith(f"/{method}.npz"), (method, path)
        start = time.perf_counter()
        scores = score_dump(dump, method, splits, **hyper)
        if np.isnan(scores["test"]).all():
            print(f"{method}: not computed for a {dump['head']} head (its logits are not W h + b)")
        else:
            means = ", ".join(f"{split} {values.mean():.4g}" for split, values in scores.items())
            print(f"{method} ({time.perf_counter() - start:.2f} s): mean score {means}")
        atomic_savez(path, **scores)
