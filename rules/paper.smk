# The paper: paper/*.tex + generated figures, tables and macros, compiled by latexmk (pdfTeX).


rule paper:
    input:
        sources=["paper/paper.tex", "paper/references.bib"],
        macros=rules.tables_and_macros.output.macros,
        tables=rules.tables_and_macros.output,
        figures=expand(
            "results/report/figures/{name}.pdf",
            name=["training_curves", "collapse_progression", "ncc_agreement", "nc5", "roc", "histograms", "tsne"],
        ),
    output:
        "results/paper/paper.pdf",
    localrule: True
    log:
        "results/logs/paper/latexmk.log",
    conda:
        "../envs/latex.yaml"
    shell:
        "bash scripts/compile_paper.sh {output} results/report paper > {log} 2>&1"
