# Data preparation: raw files fetched once (on the submit host), converted into compact uint8 arrays.
# ImageNet-LT is read from local files (data.imagenet_lt): its split lists are inputs, its images are not.


rule fetch_raw:
    output:
        "results/data/raw/{source}.json",
    localrule: True
    params:
        root=config["data"]["root"],
        download=config["data"]["download"],
    input:
        code("fetch_raw"),
    log:
        "results/logs/data/fetch_{source}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/fetch_raw.py"


rule prepare_id:
    output:
        "results/data/{dataset}.npz",
    params:
        split=lambda w: id_split(w.dataset),
        imagenet_lt=imagenet_lt_spec(),
    input:
        raw=lambda w: raw_manifest(w.dataset),
        lists=imagenet_lt_inputs(),
        code=code("prepare_id"),
    threads: 8 if DATASET == IMAGENET_LT else 1
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    log:
        "results/logs/data/{dataset}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/prepare_id.py"


rule prepare_ood:
    output:
        "results/data/ood/{ood}.npz",
    params:
        synthetic=lambda w: config["data"]["synthetic"].get(w.ood),
        folder=lambda w: config["data"]["folders"].get(w.ood),
        image_size=image_size(config["data"]),
        rgb=image_format(DATASET) == "rgb32",
        seed=config["data"]["split_seed"],
    input:
        raw=lambda w: raw_manifest(w.ood),
        code=code("prepare_ood"),
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    log:
        "results/logs/data/ood_{ood}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/prepare_ood.py"
