# Training: one run per (schedule, seed); checkpoints at the schedule's epochs and a per-epoch history.
# Each schedule has its own rule because its checkpoint files (the outputs) depend on its epochs.

for _schedule in SCHEDULES:

    rule:
        name:
            f"train_{_schedule}"
        input:
            data=f"results/data/{DATASET}.npz",
            code=code("train"),
        output:
            checkpoints=expand(
                f"results/runs/{_schedule}/seed{{{{seed}}}}/checkpoints/epoch{{epoch}}.pt",
                epoch=checkpoint_epochs(_schedule),
            ),
            history=f"results/runs/{_schedule}/seed{{seed}}/history.csv",
            compute=f"results/runs/{_schedule}/seed{{seed}}/compute.json",
        params:
            schedule=_schedule,
            recipe=lambda w, schedule=_schedule: recipe(schedule, int(w.seed)),
            model=config["model"],
            resume_dir=f"results/resume/runs/{_schedule}/seed{{seed}}",
        threads: 1
        resources:
            gpu=GPUS_PER_JOB,
            cpus_per_gpu=config["cluster"]["cpus_per_gpu"],
            mem_mb=memory_mb("mem_mb"),
            runtime=lambda w, attempt, schedule=_schedule: train_minutes(schedule, attempt),
        log:
            f"results/logs/runs/{_schedule}/seed{{seed}}/train.log",
        benchmark:
            f"results/benchmarks/runs/{_schedule}/seed{{seed}}/train.tsv"
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/train.py"
