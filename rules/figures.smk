# The paper's figures, one `figure` job each (nclab.contents: inputs, options), and the t-SNE they draw.

FIGURES = f"{ROOT}/report/figures"


rule tsne:
    input:
        dumps=rules.extract_features.output.dumps,
        code=code("tsne"),
    output:
        f"{RUN}/tsne.npz",
    log:
        f"{ROOT}/logs/{RUN_ID}/tsne.log",
    benchmark:
        f"{ROOT}/benchmarks/{RUN_ID}/tsne.tsv"
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    params:
        epoch=lambda w: run_spec(w).final_epoch,
        perplexity=config["figures"]["tsne"]["perplexity"],
        seed=lambda w: int(w.seed),
    script:
        "../scripts/tsne.py"


rule figure:
    input:
        unpack(figure_inputs),
        code=code("figure"),
    output:
        report(
            f"{FIGURES}/{{figure}}.pdf",
            caption="../report/figure.rst",
            category=lambda w: STUDY_TITLES[FIGURE_TABLE[w.figure].study],
            subcategory="Figures",
            labels=lambda w: {"figure": w.figure},
        ),
    log:
        f"{ROOT}/logs/figures/{{figure}}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        style=config["figures"]["style"],
        source=lambda w: FIGURE_TABLE[w.figure].source,
        options=lambda w: figure_options(w.figure),
    script:
        "../scripts/figure.py"
