"""Snakemake entry point: the paper's LaTeX tables and its macros file of numbers."""

from nclab import published, relation, report
from nclab.data import load_id
from nclab.io import atomic_write_text, load_npz, logged, read_tables
from nclab.runs import final_epochs

with logged(snakemake.log[0]):
    p = snakemake.params
    history, collapse, ood = (read_tables(snakemake.input[k]) for k in ("histories", "collapse", "ood"))
    headline = p.settings["headline_methods"]
    atomic_write_text(snakemake.output.ood_auroc, report.ood_auroc_table(ood, p.schedules, p.ood_sets, headline))
    atomic_write_text(snakemake.output.ood_full, report.ood_full_table(ood, p.schedules, p.headline_ood, headline))
    detectors = report.detectors_table(ood, p.schedules, p.ood_sets, p.settings["families"])
    atomic_write_text(snakemake.output.detectors, detectors)
    trajectory = read_tables(snakemake.input.trajectories)
    relations = relation.relation(trajectory, ["schedule"], relation.MEASURES, p.headline_ood)
    atomic_write_text(snakemake.output.relation, report.relation_table(relations, p.settings["families"]))
    atomic_write_text(snakemake.output.collapse, report.collapse_table(collapse, p.schedules))
    train, test, num_classes = load_id(snakemake.input.data)
    ood_sizes = {name: len(load_npz(path)["images"]) for name, path in zip(p.ood_sets, snakemake.input.ood_data)}
    atomic_write_text(snakemake.output.ood_sets, report.ood_sets_table(p.dataset, ood_sizes, p.skipped_ood_sets))
    published_rows = published.load(snakemake.input.published)
    matches = published.balanced_matches(published_rows, p.dataset, p.arch, p.ood_sets, list(ood["method"].unique()))
    comparison = published.compared(
        matches, {"ood": ood, "collapse": final_epochs(collapse, "balanced")}, p.schedule_epochs
    )
    notes = published.differences(comparison, lambda row: [row["our_epochs"]])
    setting = published.setting_label(p.dataset, p.arch)
    missing = published.missing_groups(published_rows, p.dataset, p.arch, p.ood_sets)
    atomic_write_text(
        snakemake.output.published,
        published.balanced_comparison(
            comparison, notes, setting, report.escape, published.missing_groups_sentence(missing, p.dataset)
        ),
    )
    print(f"{len(comparison)} published numbers beside ours")
    settings = {
        **p.settings,
        "dataset": p.dataset,
        "arch": p.arch,
        "num_classes": num_classes,
        "train_size": len(train.labels),
        "test_size": len(test.labels),
        "ood_sizes": ood_sizes,
        "skipped_ood_sets": p.skipped_ood_sets,
        "headline_ood": p.headline_ood,
        "schedules": p.schedules,
        "compute": report.read_setups(snakemake.input.compute),
    }
    macros = report.paper_macros(history, collapse, ood, settings) | report.relation_macros(relations)
    atomic_write_text(snakemake.output.macros, report.macros_file(macros))
    print(f"{len(macros)} macros")
