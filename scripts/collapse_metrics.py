"""Snakemake entry point: the NC metrics of every checkpoint of one run, one row per epoch."""

import pandas as pd

from nclab.collapse import collapse_metrics
from nclab.io import atomic_path, load_dump, logged

with logged(snakemake.log[0]):
    rows = []
    for epoch, path in zip(snakemake.params.epochs, snakemake.input.dumps):
        dump = load_dump(path)
        metrics = collapse_metrics(dump, dump["weight"].shape[0], snakemake.params.ood_sets)
        rows.append({"schedule": snakemake.wildcards.schedule, "seed": int(snakemake.wildcards.seed),
                     "epoch": epoch, **metrics})
        print(f"epoch {epoch}: NC1 {metrics['nc1']:.4g}  NC3 {metrics['nc3']:.4g}  NC4(test) {metrics['nc4_test']:.4g}")
    with atomic_path(snakemake.output[0]) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.10g")
