# The long-tail study: a long-tailed subset per imbalance ratio (its own artifact), then one run per
# (ratio, loss, strategy, seed), with the checkpoints and dumps of a balanced run. Metrics and OOD scores
# come from the per-run rules of collapse.smk and ood.smk.

LT_RUN = "results/runs/longtail/ir{ratio}/{loss}/{strategy}/seed{seed}"
LT_RUN_ID = LT_RUN.removeprefix("results/")


rule prepare_longtail:
    input:
        data=f"results/data/{DATASET}.npz",
        code=code("prepare_longtail"),
    output:
        LT_DATA,
    params:
        profile=LT["profile"],
        ratio=lambda w: float(w.ratio),
        seed=LT["subset_seed"],
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    log:
        f"results/logs/data/longtail/{DATASET}-ir{{ratio}}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/prepare_longtail.py"


rule train_longtail:
    input:
        data=LT_DATA,
        code=code("train"),
    output:
        checkpoints=expand(
            f"{LT_RUN}/checkpoints/epoch{{epoch}}.pt",
            epoch=checkpoint_epochs("longtail/"),
            allow_missing=True,
        ),
        history=f"{LT_RUN}/history.csv",
        compute=f"{LT_RUN}/compute.json",
    params:
        schedule=lambda w: f"longtail/ir{w.ratio}/{w.loss}/{w.strategy}",
        recipe=lambda w: lt_recipe(w.ratio, w.loss, w.strategy, int(w.seed)),
        model=lambda w: lt_model(w.loss),
        resume_dir=f"results/resume/{LT_RUN_ID}",
    threads: 1
    resources:
        gpu=GPUS_PER_JOB,
        cpus_per_gpu=config["cluster"]["cpus_per_gpu"],
        mem_mb=memory_mb("mem_mb"),
        runtime=lambda w, attempt: train_minutes("longtail/", attempt),
    log:
        f"results/logs/{LT_RUN_ID}/train.log",
    benchmark:
        f"results/benchmarks/{LT_RUN_ID}/train.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/train.py"


rule extract_features_longtail:
    input:
        checkpoints=rules.train_longtail.output.checkpoints,
        data=LT_DATA,
        ood=expand("results/data/ood/{ood}.npz", ood=OOD_SETS),
        code=code("extract_features"),
    output:
        dumps=expand(f"{LT_RUN}/features/epoch{{epoch}}.npz", epoch=checkpoint_epochs("longtail/"), allow_missing=True),
    params:
        model=lambda w: lt_model(w.loss),
        ood_sets=OOD_SETS,
        device=config["training"]["device"],
    threads: 1
    resources:
        gpu=GPUS_PER_JOB,
        cpus_per_gpu=config["cluster"]["cpus_per_gpu"],
        mem_mb=memory_mb("mem_mb"),
        runtime=lambda w, attempt: 60 * attempt,
    log:
        f"results/logs/{LT_RUN_ID}/features.log",
    benchmark:
        f"results/benchmarks/{LT_RUN_ID}/features.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/extract_features.py"
