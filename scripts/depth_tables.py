"""Snakemake entry point: the paper's depth part, its relation table and its macros file."""

from nclab import published, relation, report, report_depth
from nclab.io import atomic_write_text, logged, read_tables
from nclab.runs import final_epochs

with logged(snakemake.log[0]):
    p = snakemake.params
    layers = read_tables(snakemake.input.layers)
    table = report_depth.correlations(layers, p.headline_ood)
    final = relation.depth_relation(final_epochs(table, report_depth.STUDY))
    atomic_write_text(snakemake.output.relation, report_depth.relation_table(final))
    references = published.depth_references(published.load(snakemake.input.published))
    settings = {
        "headline_ood": p.headline_ood,
        "schedules": p.schedules,
        "grid": p.grid,
        "knn_k": p.knn_k,
    }
    macros = report_depth.depth_macros(layers, table, final, references, settings)
    atomic_write_text(snakemake.output.macros, report.macros_file(macros))
    print(
        f"{len(macros)} macros; the relation across depth: {sum(final['verdict'] != 'no claim can be tested')} tested"
    )
