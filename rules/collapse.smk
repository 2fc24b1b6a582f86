# Neural Collapse metrics (NC1-NC5, alignment): one row per checkpoint, one table per run.


rule collapse_metrics:
    input:
        dumps=lambda w: [f"{run_dir(w)}/features/epoch{e}.npz" for e in checkpoint_epochs(w.schedule)],
        code=code("collapse"),
    output:
        f"{RUN}/collapse.csv",
    params:
        epochs=lambda w: checkpoint_epochs(w.schedule),
        ood_sets=OOD_SETS,
    log:
        f"results/logs/{RUN_ID}/collapse.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/collapse_metrics.py"
