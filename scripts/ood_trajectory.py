"""Snakemake entry point: every configured detector's OOD metrics at every selected checkpoint of one run (each
dump loaded once, each detector fitted once per checkpoint), beside the run's NC measures of that checkpoint."""

import time

import pandas as pd

from nclab.io import atomic_path, epoch_file, load_dump, logged
from nclab.ood_metrics import checkpoint_rows

with logged(snakemake.log[0]):
    p = snakemake.params
    collapse = pd.read_csv(snakemake.input.collapse).set_index("epoch")
    rows = []
    for epoch in p.epochs:
        start = time.perf_counter()
        dump = load_dump(epoch_file(snakemake.input.dumps, epoch, ".npz"))
        measures = {column: collapse.at[epoch, column] for column in p.measures}
        for row in checkpoint_rows(dump, p.hyperparameters, p.ood_sets):
            rows.append({**p.run_keys, "seed": p.seed, "epoch": epoch, **row, **measures})
        print(
            f"epoch {epoch}: {len(p.hyperparameters)} detectors x {len(p.ood_sets)} OOD sets in "
            f"{time.perf_counter() - start:.2f} s"
        )
    with atomic_path(snakemake.output[0]) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.10g")
