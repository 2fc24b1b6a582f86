"""Snakemake entry point: the long-tail section's LaTeX tables and its macros file."""

import numpy as np

from nclab import published, relation, report
from nclab import report_longtail as lt
from nclab.data import load_labels
from nclab.io import atomic_write_text, logged, read_tables
from nclab.runs import final_epochs

with logged(snakemake.log[0]):
    p = snakemake.params
    collapse, classes, ood = (read_tables(snakemake.input[k]) for k in ("collapse", "classes", "ood"))
    final = final_epochs(collapse, "longtail")
    matches = published.longtail_matches(
        published.load(snakemake.input.published), p.dataset, p.arch, p.ratios, list(final["loss"].unique())
    )
    atomic_write_text(snakemake.output.accuracy, lt.accuracy_table(final, matches))
    atomic_write_text(snakemake.output.geometry, lt.geometry_table(final))
    atomic_write_text(snakemake.output.ood, lt.ood_table(ood, p.headline_ood, p.headline_methods))
    atomic_write_text(snakemake.output.effects, lt.effects_table(lt.strategy_effects(final)))
    subsets = {ratio: load_labels(path) for ratio, path in zip(p.ratios, snakemake.input.data)}
    train_labels, test_labels, num_classes = subsets[max(subsets)]  # every subset shares the balanced test set
    settings = {
        **p.settings,
        "headline_ood": p.headline_ood,
        "headline_methods": p.headline_methods,
        "dataset": p.dataset,
        "num_classes": num_classes,
        "test_size": len(test_labels),
        "image_size": p.image_size,
        "train_sizes": {ratio: len(train) for ratio, (train, _, _) in subsets.items()},
        "smallest_class": int(np.bincount(train_labels).min()),
        "compute": report.read_setups(snakemake.input.compute),
    }
    macros = lt.longtail_macros(final, classes, ood, settings, matches)
    trajectory = read_tables(snakemake.input.trajectories)
    relations = relation.relation(trajectory, lt.KEYS, ["nc1"], p.headline_ood)
    macros |= report.relation_macros(relations, "LT")
    macros["LTAlignmentAurocSentence"] = report.across_runs_sentence(
        final, ood, lt.KEYS, "alignment_mean", "the mean alignment", p.headline_ood, p.headline_methods
    )
    print(f"{len(matches)} published baselines beside ours")
    atomic_write_text(snakemake.output.macros, report.macros_file(macros))
    print(f"{len(macros)} macros")
