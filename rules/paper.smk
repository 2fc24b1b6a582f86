# The paper: paper/*.tex + generated figures, tables and macros of the configured studies, compiled by
# latexmk (pdfTeX). paper.tex includes balanced.tex, depth.tex, longtail.tex and external.tex by its parts
# (PARTS: `studies`, and the depth analysis where `layers` is enabled).
# Each table is also typeset on its own for Snakemake's HTML report (`snakemake --report results/<name>/report.html`).


rule paper:
    input:
        sources=["paper/paper.tex", "paper/references.bib"],
        generated=paper_inputs(),
    output:
        report(f"{ROOT}/paper/paper.pdf", caption="../report/paper.rst", category="Paper"),
    log:
        f"{ROOT}/logs/paper/latexmk.log",
    localrule: True
    conda:
        "../envs/latex.yaml"
    params:
        studies=" ".join(PARTS),
    shell:
        f"bash scripts/compile_paper.sh {{output}} {ROOT}/report paper '{{params.studies}}' {{input.generated}} > {{log}} 2>&1"


rule typeset_table:
    input:
        table=f"{ROOT}/report/{{table}}.tex",
        template="report/table.tex",
    output:
        report(
            f"{ROOT}/report/{{table}}.pdf",
            caption="../report/table.rst",
            category=lambda w: STUDY_TITLES[TABLES[w.table].study],
            subcategory="Tables",
            labels=lambda w: {"table": w.table.rsplit("/", 1)[-1]},
        ),
    log:
        f"{ROOT}/logs/report/{{table}}.log",
    localrule: True
    conda:
        "../envs/latex.yaml"
    shell:
        "bash scripts/typeset_table.sh {input.template} {input.table} {output} > {log} 2>&1"
