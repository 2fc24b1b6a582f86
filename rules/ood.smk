# OOD detection at the end of each run: one score array per method, then the metric table of the run.


rule ood_score:
    input:
        dump=lambda w: f"{run_dir(w)}/features/epoch{final_epoch(w.schedule)}.npz",
        code=code("ood_score"),
    output:
        f"{RUN}/ood/scores/{{method}}.npz",
    params:
        hyperparameters=lambda w: config["ood"]["scores"][w.method],
        ood_sets=OOD_SETS,
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    group:
        analysis_group
    log:
        f"results/logs/{RUN_ID}/ood_score_{{method}}.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/ood_score.py"


rule ood_metrics:
    input:
        scores=expand(f"{RUN}/ood/scores/{{method}}.npz", method=SCORES, allow_missing=True),
        code=code("ood_metrics"),
    output:
        f"{RUN}/ood/metrics.csv",
    params:
        methods=SCORES,
        ood_sets=OOD_SETS,
    group:
        analysis_group
    log:
        f"results/logs/{RUN_ID}/ood_metrics.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/ood_metrics.py"
