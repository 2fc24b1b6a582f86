# The long-tail study's data: a long-tailed subset per imbalance ratio (its own artifact). Its runs, one per
# (ratio, loss, strategy) and seed, are entries of the run table (nclab.runs), trained, extracted and analysed
# by the per-run rules of train.smk, features.smk, collapse.smk and ood.smk.


rule prepare_longtail:
    input:
        data=f"{ROOT}/data/{DATASET}.npz",
        code=code("prepare_longtail"),
    output:
        LT_DATA,
    log:
        f"{ROOT}/logs/data/longtail/{DATASET}-ir{{ratio}}.log",
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    params:
        profile=LT["profile"],
        ratio=lambda w: float(w.ratio),
        seed=LT["subset_seed"],
    script:
        "../scripts/prepare_longtail.py"
