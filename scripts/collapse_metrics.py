"""Snakemake entry point: the NC metrics of every checkpoint of one run, one row per epoch, and the per-class
table of the final checkpoint (with shot-group metrics for long-tail runs)."""

import sys

import pandas as pd

from nclab.collapse import INFINITE_WHEN_MEANS_COINCIDE, class_table, collapse_metrics, group_metrics
from nclab.io import atomic_path, epoch_file, load_dump, logged

with logged(snakemake.log[0]):
    p = snakemake.params
    run = {**p.run_keys, "seed": p.seed}
    rows = []
    for epoch in p.epochs:
        dump = load_dump(epoch_file(snakemake.input.dumps, epoch, ".npz"))
        num_classes = dump["weight"].shape[0]
        try:
            metrics = collapse_metrics(dump, num_classes, p.ood_sets)
        except ValueError as err:
            raise ValueError(f"checkpoint of epoch {epoch}: {err}") from err
        infinite = [k for k in INFINITE_WHEN_MEANS_COINCIDE if metrics[k] == float("inf")]
        if infinite:
            print(
                f"warning: {run}, epoch {epoch}: {', '.join(infinite)} infinite, two class means coincide "
                f"(training accuracy {metrics['network_accuracy_train']:.3f})",
                file=sys.stderr,
            )
        table = class_table(dump, num_classes) if p.shot_thresholds else None
        if table is not None:
            metrics.update(group_metrics(dump, table, **p.shot_thresholds))
        rows.append({**run, "epoch": epoch, **metrics})
        print(f"epoch {epoch}: NC1 {metrics['nc1']:.4g}  NC3 {metrics['nc3']:.4g}  NC4(test) {metrics['nc4_test']:.4g}")
    with atomic_path(snakemake.output.metrics) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.10g")
    with atomic_path(snakemake.output.classes) as tmp:
        final_table = table if table is not None else class_table(dump, num_classes)
        pd.DataFrame({**run, "epoch": epoch, **final_table}).to_csv(tmp, index=False, float_format="%.10g")
