# The paper: paper/*.tex + generated figures, tables and macros of the configured studies, compiled by
# latexmk (pdfTeX). paper.tex includes balanced.tex and longtail.tex according to `studies`.

rule paper:
    input:
        sources=["paper/paper.tex", "paper/references.bib"],
        generated=paper_inputs(),
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
