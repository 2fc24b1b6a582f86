# Feature and logit dumps of every split (train, test, each OOD set) at every checkpoint of a run: a folder,
# one file per saved epoch. One job per run and seed (the checkpoints share the network set-up).


rule extract_features:
    input:
        checkpoints=rules.train.output.checkpoints,
        data=lambda w: run_spec(w).data,
        ood=expand(f"{ROOT}/data/ood/{{ood}}.npz", ood=OOD_SETS),
        code=code("extract_features"),
    output:
        dumps=directory(f"{RUN}/features"),
    log:
        f"{ROOT}/logs/{RUN_ID}/features.log",
    benchmark:
        f"{ROOT}/benchmarks/{RUN_ID}/features.tsv"
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
        epochs=lambda w: run_spec(w).checkpoints,
        model=lambda w: run_spec(w).model,
        ood_sets=OOD_SETS,
        device=config["training"]["device"],
    script:
        "../scripts/extract_features.py"
