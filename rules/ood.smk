# OOD detection at the end of each run: one score array per method, then the metric table of the run.


rule ood_score:
    input:
        dumps=rules.extract_features.output.dumps,
        code=code("ood_score"),
    output:
        f"{RUN}/ood/scores/{{method}}.npz",
    log:
        f"results/logs/{RUN_ID}/ood_score_{{method}}.log",
    group:
        analysis_group
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    params:
        epoch=lambda w: run_spec(w).final_epoch,
        hyperparameters=lambda w: config["ood"]["scores"][w.method],
        ood_sets=OOD_SETS,
    script:
        "../scripts/ood_score.py"


rule ood_metrics:
    input:
        scores=expand(f"{RUN}/ood/scores/{{method}}.npz", method=SCORES, allow_missing=True),
        code=code("ood_metrics"),
    output:
        f"{RUN}/ood/metrics.csv",
    log:
        f"results/logs/{RUN_ID}/ood_metrics.log",
    group:
        analysis_group
    conda:
        "../envs/analysis.yaml"
    params:
        run_keys=lambda w: run_spec(w).keys,
        seed=lambda w: int(w.seed),
        methods=SCORES,
        ood_sets=OOD_SETS,
    script:
        "../scripts/ood_metrics.py"
