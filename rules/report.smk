# LaTeX tables and the macros file: the only way numbers reach the paper's text.


rule tables_and_macros:
    input:
        histories=run_files("history.csv"),
        compute=run_files("compute.json"),
        collapse=run_files("collapse.csv"),
        ood=run_files("ood/metrics.csv"),
        trajectories=run_files("ood/trajectory.csv"),
        data=f"{ROOT}/data/{DATASET}.npz",
        ood_data=expand(f"{ROOT}/data/ood/{{ood}}.npz", ood=OOD_SETS),
        published=PUBLISHED,
        code=code("tables"),
    output:
        ood_auroc=f"{ROOT}/report/tables/ood_auroc.tex",
        ood_full=f"{ROOT}/report/tables/ood_full.tex",
        detectors=f"{ROOT}/report/tables/detectors.tex",
        relation=f"{ROOT}/report/tables/relation.tex",
        collapse=f"{ROOT}/report/tables/collapse.tex",
        ood_sets=f"{ROOT}/report/tables/ood_sets.tex",
        published=f"{ROOT}/report/tables/published.tex",
        macros=f"{ROOT}/report/macros.tex",
    log:
        f"{ROOT}/logs/report/tables_and_macros.log",
    conda:
        "../envs/analysis.yaml"
    params:
        dataset=DATASET,
        arch=config["model"]["arch"],
        schedule_epochs={name: spec["epochs"] for name, spec in config["schedules"].items()},
        schedules=SCHEDULES,
        ood_sets=OOD_SETS,
        skipped_ood_sets=SKIPPED_OOD_SETS,
        headline_ood=config["paper"]["headline_ood"],
        settings=lambda w: {
            **{k: v for k, v in config["training"].items() if k != "seeds"},
            "width": config["model"]["width"],
            "feature_dim": feature_dim(config["model"]["arch"], config["model"]["width"]),
            "schedule_specs": config["schedules"],
            "ood_hyperparameters": DETECTOR_HYPERPARAMETERS,
            "methods": METHODS,
            "families": DETECTOR_FAMILIES,
            "headline_methods": HEADLINE_METHODS,
        },
    script:
        "../scripts/tables.py"
