# The paper: paper/*.tex + generated figures, tables and macros of the configured studies, compiled by
# latexmk (pdfTeX). paper.tex includes balanced.tex and longtail.tex according to `studies`.
# Each table is also typeset on its own for Snakemake's HTML report (`snakemake --report results/report.html`).


rule paper:
    input:
        sources=["paper/paper.tex", "paper/references.bib"],
        generated=paper_inputs(),
    output:
        report("results/paper/paper.pdf", caption="../report/paper.rst", category="Paper"),
    log:
        "results/logs/paper/latexmk.log",
    localrule: True
    conda:
        "../envs/latex.yaml"
    params:
        studies=" ".join(STUDIES),
    shell:
        "bash scripts/compile_paper.sh {output} results/report paper '{params.studies}' {input.generated} > {log} 2>&1"


rule typeset_table:
    input:
        table="results/report/{table}.tex",
        template="report/table.tex",
    output:
        report(
            "results/report/{table}.pdf",
            caption="../report/table.rst",
            category=lambda w: STUDY_TITLES[TABLES[w.table].study],
            subcategory="Tables",
            labels=lambda w: {"table": w.table.rsplit("/", 1)[-1]},
        ),
    log:
        "results/logs/report/{table}.log",
    localrule: True
    conda:
        "../envs/latex.yaml"
    shell:
        "bash scripts/typeset_table.sh {input.template} {input.table} {output} > {log} 2>&1"
