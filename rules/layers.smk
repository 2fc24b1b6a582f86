# Neural Collapse and OOD detection at every depth of a trained run, at every checkpoint (the detectors of
# layers.final_only at the final one only): one table per run. The
# job recomputes the forward pass of the feature job with hooks on every layer and analyses the pooled features
# in place: they are never stored (at CIFAR-100 scale about 0.8 GB per checkpoint), and a change to the depth
# analysis reruns this job alone. A model trained elsewhere has the same table where its entry names `layers`.
# The paper's depth part (paper/depth.tex) reads the balanced runs' tables.


rule layer_analysis:
    input:
        checkpoints=rules.train.output.checkpoints,
        data=lambda w: run_spec(w).data,
        ood=expand(f"{ROOT}/data/ood/{{ood}}.npz", ood=OOD_SETS),
        code=code("layer_analysis"),
    output:
        table=f"{RUN}/layers.csv",
    log:
        f"{ROOT}/logs/{RUN_ID}/layers.log",
    benchmark:
        f"{ROOT}/benchmarks/{RUN_ID}/layers.tsv"
    wildcard_constraints:
        run=TRAINED_RUN_PATTERN,
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        gpu=GPUS_PER_JOB,
        cpus_per_gpu=config["cluster"]["cpus_per_gpu"],
        mem_mb=memory_mb("mem_mb"),
        runtime=lambda w, attempt: 60 * attempt,
    params:
        run_keys=lambda w: run_spec(w).keys,
        seed=lambda w: int(w.seed),
        epochs=lambda w: run_spec(w).checkpoints,
        model=lambda w: run_spec(w).model,
        ood_sets=OOD_SETS,
        granularity=config["layers"]["granularity"],
        grid=config["layers"]["grid"],
        final_only=config["layers"]["final_only"],
        knn_k=config["ood"]["hyperparameters"]["knn"]["k"],
        device=config["training"]["device"],
    script:
        "../scripts/layer_analysis.py"


rule external_layer_analysis:
    input:
        checkpoints=lambda w: run_spec(w).model["checkpoints"],
        data=lambda w: run_spec(w).data,
        ood=expand(f"{ROOT}/data/ood/{{ood}}.npz", ood=OOD_SETS),
        code=code("external_layer_analysis"),
    output:
        table=f"{RUN}/layers.csv",
    log:
        f"{ROOT}/logs/{RUN_ID}/layers.log",
    benchmark:
        f"{ROOT}/benchmarks/{RUN_ID}/layers.tsv"
    wildcard_constraints:
        run=EXTERNAL_LAYER_RUN_PATTERN,
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        gpu=GPUS_PER_JOB,
        cpus_per_gpu=config["cluster"]["cpus_per_gpu"],
        mem_mb=memory_mb("mem_mb"),
        runtime=lambda w, attempt: 60 * attempt,
    params:
        name=lambda w: run_spec(w).keys["model"],
        model=external_network,
        layers=lambda w: run_spec(w).model["layers"],
        dataset=DATASET,
        ood_sets=OOD_SETS,
        grid=config["layers"]["grid"],
        final_only=config["layers"]["final_only"],
        knn_k=config["ood"]["hyperparameters"]["knn"]["k"],
        device=config["training"]["device"],
    script:
        "../scripts/external_layer_analysis.py"


rule depth_tables:
    input:
        layers=run_files("layers.csv"),
        published=PUBLISHED,
        code=code("depth_tables"),
    output:
        relation=f"{ROOT}/report/depth/tables/relation.tex",
        macros=f"{ROOT}/report/depth/macros.tex",
    log:
        f"{ROOT}/logs/report/depth_tables.log",
    conda:
        "../envs/analysis.yaml"
    params:
        headline_ood=config["paper"]["headline_ood"],
        schedules=SCHEDULES,
        grid=config["layers"]["grid"],
        knn_k=config["ood"]["hyperparameters"]["knn"]["k"],
    script:
        "../scripts/depth_tables.py"
