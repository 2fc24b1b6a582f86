# Data preparation: datasets as compact uint8 arrays.


rule prepare_id:
    output:
        "results/data/{dataset}.npz",
    params:
        test_fraction=config["data"]["test_fraction"],
        split_seed=config["data"]["split_seed"],
    input:
        code("data"),
    log:
        "results/logs/data/{dataset}.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/prepare_id.py"


rule prepare_ood:
    output:
        "results/data/ood/{ood}.npz",
    params:
        spec=lambda w: config["data"]["ood_sets"][w.ood],
        image_size=IMAGE_SIZES[DATASET],
        seed=config["data"]["split_seed"],
    input:
        code("data"),
    log:
        "results/logs/data/ood_{ood}.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/prepare_ood.py"
