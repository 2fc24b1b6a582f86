# Models trained elsewhere (config `external`, docs/external.md): the feature dumps of their checkpoints and where
# these came from; the same per-run analysis as a trained run follows (rules/collapse.smk, rules/ood.smk); then
# the section's tables and macros (with the depth analysis of the models whose entry names layers:
# rules/layers.smk).


rule extract_external_features:
    input:
        checkpoints=lambda w: run_spec(w).model["checkpoints"],
        data=lambda w: run_spec(w).data,
        ood=expand(f"{ROOT}/data/ood/{{ood}}.npz", ood=OOD_SETS),
        code=code("extract_external_features"),
    output:
        dumps=directory(f"{RUN}/features"),
        provenance=f"{RUN}/provenance.json",
    log:
        f"{ROOT}/logs/{RUN_ID}/features.log",
    benchmark:
        f"{ROOT}/benchmarks/{RUN_ID}/features.tsv"
    wildcard_constraints:
        run=EXTERNAL_RUN_PATTERN,
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
        dataset=DATASET,
        ood_sets=OOD_SETS,
        device=config["training"]["device"],
    script:
        "../scripts/extract_external_features.py"


rule external_tables_and_macros:
    input:
        collapse=run_files("collapse.csv", "external"),
        ood=run_files("ood/metrics.csv", "external"),
        trajectories=run_files("ood/trajectory.csv", "external"),
        provenance=run_files("provenance.json", "external"),
        layers=[f"{RUN.format(run=run, seed=0)}/layers.csv" for run in EXTERNAL_LAYER_RUNS],
        code=code("external_tables"),
    output:
        provenance=f"{ROOT}/report/external/tables/provenance.tex",
        checkpoints=f"{ROOT}/report/external/tables/checkpoints.tex",
        detectors=f"{ROOT}/report/external/tables/detectors.tex",
        layers=f"{ROOT}/report/external/tables/layers.tex",
        macros=f"{ROOT}/report/external/macros.tex",
    log:
        f"{ROOT}/logs/report/external_tables_and_macros.log",
    conda:
        "../envs/analysis.yaml"
    params:
        models=list(EXTERNAL),
        descriptions={name: model["description"] for name, model in EXTERNAL.items()},
        dataset=DATASET,
        ood_sets=OOD_SETS,
        families=DETECTOR_FAMILIES,
        headline_ood=config["paper"]["headline_ood"],
        headline_methods=HEADLINE_METHODS,
        grid=config["layers"]["grid"],
    script:
        "../scripts/external_tables.py"
