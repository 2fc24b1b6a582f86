# Feature and logit dumps of every split (train, test, each OOD set), one file per checkpoint.
# One job per run (the checkpoints share the network set-up); a rule per schedule, as for training.

for _schedule in SCHEDULES:

    rule:
        name:
            f"extract_features_{_schedule}"
        input:
            checkpoints=getattr(rules, f"train_{_schedule}").output.checkpoints,
            data=f"results/data/{DATASET}.npz",
            ood=expand("results/data/ood/{ood}.npz", ood=OOD_SETS),
            code=code("extract_features"),
        output:
            dumps=expand(
                f"results/runs/{_schedule}/seed{{{{seed}}}}/features/epoch{{epoch}}.npz",
                epoch=checkpoint_epochs(_schedule),
            ),
        params:
            model=config["model"],
            ood_sets=OOD_SETS,
            device=config["training"]["device"],
        threads: 1
        resources:
            gpu=GPUS_PER_JOB,
            cpus_per_gpu=config["cluster"]["cpus_per_gpu"],
            mem_mb=memory_mb("mem_mb"),
            runtime=lambda w, attempt: 60 * attempt,
        log:
            f"results/logs/runs/{_schedule}/seed{{seed}}/features.log",
        benchmark:
            f"results/benchmarks/runs/{_schedule}/seed{{seed}}/features.tsv"
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/extract_features.py"
