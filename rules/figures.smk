# The paper's figures; each rule's params hold exactly the options that figure depends on.

FIGURES = "results/report/figures"

rule tsne:
    input:
        dump=lambda w: f"{run_dir(w)}/features/epoch{final_epoch(w.schedule)}.npz",
        code=code("tsne"),
    output:
        f"{RUN}/tsne.npz",
    params:
        perplexity=config["figures"]["tsne"]["perplexity"],
        seed=lambda w: int(w.seed),
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    log:
        f"results/logs/{RUN_ID}/tsne.log",
    benchmark:
        f"results/benchmarks/{RUN_ID}/tsne.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/tsne.py"


rule figure_training_curves:
    input:
        tables=run_files("history.csv"),
        code=code("figure"),
    output:
        f"{FIGURES}/training_curves.pdf",
    params:
        kind="training_curves",
        style=config["figures"]["style"],
    log:
        "results/logs/figures/training_curves.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/figure.py"


use rule figure_training_curves as figure_collapse_progression with:
    input:
        tables=run_files("collapse.csv"),
        code=code("figure"),
    output:
        f"{FIGURES}/collapse_progression.pdf",
    params:
        kind="collapse_progression",
        style=config["figures"]["style"],
    log:
        "results/logs/figures/collapse_progression.log",


use rule figure_training_curves as figure_ncc_agreement with:
    input:
        tables=run_files("collapse.csv"),
        code=code("figure"),
    output:
        f"{FIGURES}/ncc_agreement.pdf",
    params:
        kind="ncc_agreement",
        style=config["figures"]["style"],
    log:
        "results/logs/figures/ncc_agreement.log",


use rule figure_training_curves as figure_nc5 with:
    input:
        tables=run_files("collapse.csv"),
        code=code("figure"),
    output:
        f"{FIGURES}/nc5.pdf",
    params:
        kind="nc5",
        style=config["figures"]["style"],
        ood_sets=OOD_SETS,
    log:
        "results/logs/figures/nc5.log",


use rule figure_training_curves as figure_roc with:
    input:
        scores=first_seed_scores(SCORES),
        code=code("figure"),
    output:
        f"{FIGURES}/roc.pdf",
    params:
        kind="roc",
        style=config["figures"]["style"],
        schedules=SCHEDULES,
        methods=SCORES,
        ood_sets=OOD_SETS,
    log:
        "results/logs/figures/roc.log",


use rule figure_training_curves as figure_histograms with:
    input:
        scores=first_seed_scores(config["figures"]["histograms"]["methods"]),
        code=code("figure"),
    output:
        f"{FIGURES}/histograms.pdf",
    params:
        kind="histograms",
        style=config["figures"]["style"],
        schedules=SCHEDULES,
        methods=config["figures"]["histograms"]["methods"],
        ood_sets=OOD_SETS,
        bins=config["figures"]["histograms"]["bins"],
    log:
        "results/logs/figures/histograms.log",


use rule figure_training_curves as figure_tsne with:
    input:
        embeddings=[f"results/runs/{s}/seed{FIRST_SEED}/tsne.npz" for s in SCHEDULES],
        code=code("figure"),
    output:
        f"{FIGURES}/tsne.pdf",
    params:
        kind="tsne",
        style=config["figures"]["style"],
        schedules=SCHEDULES,
    log:
        "results/logs/figures/tsne.log",
