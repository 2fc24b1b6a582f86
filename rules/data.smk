# Data preparation: raw files fetched once (on the submit host), converted into compact uint8 arrays.
# ImageNet-LT is read from local files (data.imagenet_lt): its split lists are inputs, its images are not.


rule fetch_raw:
    input:
        code("fetch_raw"),
    output:
        f"{ROOT}/data/raw/{{source}}.json",
    log:
        f"{ROOT}/logs/data/fetch_{{source}}.log",
    localrule: True
    conda:
        "../envs/torch.yaml"
    params:
        root=config["data"]["root"],
        download=config["data"]["download"],
    script:
        "../scripts/fetch_raw.py"


rule prepare_id:
    input:
        raw=lambda w: raw_manifest(w.dataset),
        lists=imagenet_lt_inputs(),
        code=code("prepare_id"),
    output:
        f"{ROOT}/data/{{dataset}}.npz",
    log:
        f"{ROOT}/logs/data/{{dataset}}.log",
    conda:
        "../envs/torch.yaml"
    threads: 8 if DATASET == IMAGENET_LT else 1
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    params:
        split=lambda w: id_split(w.dataset),
        imagenet_lt=imagenet_lt_spec(),
    script:
        "../scripts/prepare_id.py"


rule prepare_ood:
    input:
        raw=lambda w: raw_manifest(w.ood),
        code=code("prepare_ood"),
    output:
        f"{ROOT}/data/ood/{{ood}}.npz",
    log:
        f"{ROOT}/logs/data/ood_{{ood}}.log",
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=memory_mb("cpu_mem_mb"),
    params:
        synthetic=lambda w: config["data"]["synthetic"].get(w.ood),
        folder=lambda w: config["data"]["folders"].get(w.ood),
        image_size=image_size(config["data"]),
        image_format=image_format(DATASET),
        seed=config["data"]["split_seed"],
    script:
        "../scripts/prepare_ood.py"
