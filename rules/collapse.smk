# Neural Collapse metrics (NC1-NC5, alignment; shot groups for long-tail runs): one row per checkpoint,
# one table per run, and the per-class table of the final checkpoint.


rule collapse_metrics:
    input:
        dumps=lambda w: [f"{run_dir(w)}/features/epoch{e}.npz" for e in checkpoint_epochs(w.schedule)],
        code=code("collapse_metrics"),
    output:
        metrics=f"{RUN}/collapse.csv",
        classes=f"{RUN}/classes.csv",
    params:
        epochs=lambda w: checkpoint_epochs(w.schedule),
        ood_sets=OOD_SETS,
        shot_thresholds=lambda w: LT["shot_thresholds"] if w.schedule.startswith("longtail/") else None,
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    group:
        analysis_group
    log:
        f"results/logs/{RUN_ID}/collapse.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/collapse_metrics.py"
