"""Snakemake entry point: the tables and macros of the section on models trained elsewhere."""

import json
from pathlib import Path

import pandas as pd

from nclab import report, report_external
from nclab.io import atomic_write_text, logged, read_tables

with logged(snakemake.log[0]):
    p = snakemake.params
    collapse, ood, trajectory = (read_tables(snakemake.input[k]) for k in ("collapse", "ood", "trajectories"))
    provenance = [json.loads(Path(path).read_text()) for path in snakemake.input.provenance]
    atomic_write_text(snakemake.output.provenance, report_external.provenance_table(provenance))
    checkpoints = report_external.checkpoints_table(collapse, trajectory, p.models, p.headline_ood, p.headline_methods)
    atomic_write_text(snakemake.output.checkpoints, checkpoints)
    detectors = report_external.detectors_table(ood, p.models, p.ood_sets, p.families)
    atomic_write_text(snakemake.output.detectors, detectors)
    layers = read_tables(snakemake.input.layers) if snakemake.input.layers else pd.DataFrame()
    atomic_write_text(snakemake.output.layers, report_external.layers_table(layers, p.headline_ood))
    settings = {"dataset": p.dataset, "ood_sets": p.ood_sets, "headline_ood": p.headline_ood, "families": p.families}
    macros = report_external.external_macros(provenance, p.descriptions, ood, settings)
    macros |= report_external.layers_macros(layers, p.headline_ood, p.grid)
    atomic_write_text(snakemake.output.macros, report.macros_file(macros))
    print(f"{len(provenance)} models, {len(macros)} macros")
