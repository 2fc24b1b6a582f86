# Training: one job per run (nclab.runs) and seed, for both studies; its checkpoints (a folder, one file per
# saved epoch), its per-epoch history and how it was computed.


rule train:
    input:
        data=lambda w: run_spec(w).data,
        code=code("train"),
    output:
        checkpoints=directory(f"{RUN}/checkpoints"),
        history=f"{RUN}/history.csv",
        compute=f"{RUN}/compute.json",
    log:
        f"{ROOT}/logs/{RUN_ID}/train.log",
    benchmark:
        f"{ROOT}/benchmarks/{RUN_ID}/train.tsv"
    priority: train_priority
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        gpu=GPUS_PER_JOB,
        cpus_per_gpu=config["cluster"]["cpus_per_gpu"],
        mem_mb=memory_mb("mem_mb"),
        runtime=train_minutes,
    params:
        run_keys=lambda w: run_spec(w).keys,
        recipe=lambda w: {**run_spec(w).recipe, "seed": int(w.seed)},
        model=lambda w: run_spec(w).model,
        resume_dir=f"{ROOT}/resume/{RUN_ID}",
    script:
        "../scripts/train.py"
