# Neural Collapse metrics (NC1-NC5, alignment; shot groups for long-tail runs): one row per checkpoint,
# one table per run, and the per-class table of the final checkpoint.


rule collapse_metrics:
    input:
        dumps=rules.extract_features.output.dumps,
        code=code("collapse_metrics"),
    output:
        metrics=f"{RUN}/collapse.csv",
        classes=f"{RUN}/classes.csv",
    log:
        f"{ROOT}/logs/{RUN_ID}/collapse.log",
    group:
        analysis_group
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    params:
        run_keys=lambda w: run_spec(w).keys,
        seed=lambda w: int(w.seed),
        epochs=lambda w: run_spec(w).checkpoints,
        ood_sets=OOD_SETS,
        shot_thresholds=lambda w: LT["shot_thresholds"] if run_spec(w).study == "longtail" else None,
    script:
        "../scripts/collapse_metrics.py"
