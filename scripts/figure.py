"""Snakemake entry point: one figure of the paper, chosen by the rule's ``params.kind``."""

from collections import defaultdict

from nclab import figures
from nclab.io import atomic_path, load_npz, logged, read_tables


def score_sets(paths, schedules, methods):
    """schedule -> method -> split -> scores, from files listed schedule-major."""
    sets = defaultdict(dict)
    for i, path in enumerate(paths):
        sets[schedules[i // len(methods)]][methods[i % len(methods)]] = load_npz(path)
    return sets


with logged(snakemake.log[0]):
    p = snakemake.params
    figures.apply_style(p.style)
    if p.kind == "training_curves":
        fig = figures.training_curves(read_tables(snakemake.input.tables))
    elif p.kind == "collapse_progression":
        fig = figures.collapse_progression(read_tables(snakemake.input.tables))
    elif p.kind == "ncc_agreement":
        fig = figures.ncc_agreement(read_tables(snakemake.input.tables))
    elif p.kind == "nc5":
        fig = figures.nc5_progression(read_tables(snakemake.input.tables), p.ood_sets)
    elif p.kind == "roc":
        fig = figures.roc_curves(score_sets(snakemake.input.scores, p.schedules, p.methods), p.ood_sets)
    elif p.kind == "histograms":
        fig = figures.score_histograms(score_sets(snakemake.input.scores, p.schedules, p.methods), p.methods,
                                       p.ood_sets, p.bins)
    elif p.kind == "tsne":
        embeddings = {s: tuple(load_npz(path).values()) for s, path in zip(p.schedules, snakemake.input.embeddings)}
        fig = figures.tsne_panels(embeddings)
    elif p.kind.startswith("longtail"):
        from nclab.plan import LOSS_LABELS, STRATEGY_LABELS
        from nclab.report_longtail import final_epoch, with_run_keys

        table = with_run_keys(read_tables(snakemake.input.tables))
        labels = {f"{l}/{s}": f"{LOSS_LABELS[l]}, {STRATEGY_LABELS[s]}" for l in p.losses for s in p.strategies}
        highest = table[table["ratio"] == table["ratio"].max()]
        if p.kind == "longtail_vs_ratio":
            fig = figures.longtail_vs_ratio(final_epoch(table), p.losses, p.strategies, labels)
        elif p.kind == "longtail_progression":
            fig = figures.longtail_progression(highest, p.losses, p.strategies, labels)
        else:
            fig = figures.class_alignment(highest, p.losses, p.strategies, STRATEGY_LABELS, LOSS_LABELS)
    else:
        raise ValueError(f"unknown figure kind {p.kind!r}")
    with atomic_path(snakemake.output[0]) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None})
    print(f"wrote {snakemake.output[0]}")
