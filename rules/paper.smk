# The paper: paper/*.tex + generated figures, tables and macros of the configured studies, compiled by
# latexmk (pdfTeX). paper.tex includes balanced.tex and longtail.tex according to `studies`.

BALANCED_FIGURES = ["training_curves", "collapse_progression", "ncc_agreement", "nc5", "roc", "histograms", "tsne"]
LONGTAIL_FIGURES = ["longtail_vs_ratio", "longtail_progression", "longtail_class_alignment"]


def paper_inputs(wildcards):
    inputs = []
    if "balanced" in STUDIES:
        inputs += ["paper/balanced.tex", *rules.tables_and_macros.output]
        inputs += expand("results/report/figures/{name}.pdf", name=BALANCED_FIGURES)
    if "longtail" in STUDIES:
        inputs += ["paper/longtail.tex", *rules.longtail_tables_and_macros.output]
        inputs += expand("results/report/figures/{name}.pdf", name=LONGTAIL_FIGURES)
    return inputs


rule paper:
    input:
        sources=["paper/paper.tex", "paper/references.bib"],
        generated=paper_inputs,
    output:
        "results/paper/paper.pdf",
    params:
        studies=" ".join(STUDIES),
    localrule: True
    log:
        "results/logs/paper/latexmk.log",
    conda:
        "../envs/latex.yaml"
    shell:
        "bash scripts/compile_paper.sh {output} results/report paper '{params.studies}' > {log} 2>&1"
