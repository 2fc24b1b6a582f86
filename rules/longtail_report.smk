# The long-tail section: its tables and macros (its figures are in figures.smk), from every long-tail run's metric tables.

LT_REPORT = f"{ROOT}/report/longtail"


rule longtail_tables_and_macros:
    input:
        collapse=run_files("collapse.csv", "longtail"),
        compute=run_files("compute.json", "longtail"),
        classes=run_files("classes.csv", "longtail"),
        ood=run_files("ood/metrics.csv", "longtail"),
        trajectories=run_files("ood/trajectory.csv", "longtail"),
        data=expand(LT_DATA, ratio=LT_RATIOS),
        published=PUBLISHED,
        code=code("longtail_tables"),
    output:
        accuracy=f"{LT_REPORT}/tables/accuracy.tex",
        geometry=f"{LT_REPORT}/tables/geometry.tex",
        ood=f"{LT_REPORT}/tables/ood.tex",
        effects=f"{LT_REPORT}/tables/effects.tex",
        macros=f"{LT_REPORT}/macros.tex",
    log:
        f"{ROOT}/logs/report/longtail_tables_and_macros.log",
    conda:
        "../envs/analysis.yaml"
    params:
        dataset=DATASET,
        arch=LT["model"]["arch"],
        image_size=image_size(config["data"]),
        ratios=[float(r) for r in LT_RATIOS],
        headline_ood=config["paper"]["headline_ood"],
        headline_methods=HEADLINE_METHODS,
        settings={
            **{
                k: LT[k]
                for k in ("profile", "shot_thresholds", "model", "schedule", "losses", "strategies", "alignment")
            },
            "feature_dim": feature_dim(LT["model"]["arch"], LT["model"]["width"]),
        },
    script:
        "../scripts/longtail_tables.py"
