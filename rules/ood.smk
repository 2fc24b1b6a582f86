# OOD detection at the end of each run: every configured detector in one job (the dump loaded once), one score
# array per detector, then the metric table of the run; and the metrics of every checkpoint (the trajectory).


rule ood_scores:
    input:
        dumps=rules.extract_features.output.dumps,
        code=code("ood_score"),
    output:
        expand(f"{RUN}/ood/scores/{{method}}.npz", method=METHODS, allow_missing=True),
    log:
        f"{ROOT}/logs/{RUN_ID}/ood_scores.log",
    benchmark:
        f"{ROOT}/benchmarks/{RUN_ID}/ood_scores.tsv"
    group:
        analysis_group
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    params:
        epoch=lambda w: run_spec(w).final_epoch,
        hyperparameters=DETECTOR_HYPERPARAMETERS,
        ood_sets=OOD_SETS,
    script:
        "../scripts/ood_score.py"


rule ood_metrics:
    input:
        scores=rules.ood_scores.output,
        code=code("ood_metrics"),
    output:
        f"{RUN}/ood/metrics.csv",
    log:
        f"{ROOT}/logs/{RUN_ID}/ood_metrics.log",
    group:
        analysis_group
    conda:
        "../envs/analysis.yaml"
    params:
        run_keys=lambda w: run_spec(w).keys,
        seed=lambda w: int(w.seed),
        methods=METHODS,
        ood_sets=OOD_SETS,
    script:
        "../scripts/ood_metrics.py"


rule ood_trajectory:
    input:
        dumps=rules.extract_features.output.dumps,
        collapse=rules.collapse_metrics.output.metrics,
        code=code("ood_trajectory"),
    output:
        f"{RUN}/ood/trajectory.csv",
    log:
        f"{ROOT}/logs/{RUN_ID}/ood_trajectory.log",
    benchmark:
        f"{ROOT}/benchmarks/{RUN_ID}/ood_trajectory.tsv"
    group:
        analysis_group
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    params:
        run_keys=lambda w: run_spec(w).keys,
        seed=lambda w: int(w.seed),
        epochs=trajectory_epochs,
        hyperparameters=TRAJECTORY_HYPERPARAMETERS,
        ood_sets=OOD_SETS,
        measures=[*TRAJECTORY_MEASURES, *(f"nc5_{ood}" for ood in OOD_SETS)],
    script:
        "../scripts/ood_trajectory.py"
