"""Snakemake entry point: AUROC, AUPR-In, AUPR-Out and FPR@95TPR of every score on every OOD set."""

import pandas as pd

from nclab.io import atomic_path, load_npz, logged
from nclab.ood_metrics import metric_row

with logged(snakemake.log[0]):
    rows = []
    for method, path in zip(snakemake.params.methods, snakemake.input.scores):
        scores = load_npz(path)
        for ood in snakemake.params.ood_sets:
            row = {**snakemake.params.run_keys, "seed": snakemake.params.seed, "method": method, "ood": ood}
            row.update(metric_row(scores["test"], scores[ood]))
            rows.append(row)
            print(row)
    with atomic_path(snakemake.output[0]) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.10g")
