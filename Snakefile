# nclab: Neural Collapse, OOD detection and long-tailed learning, from raw data to a compiled paper.
# Run from this folder: `snakemake --cores all` (the miniature study in config.yaml), or with a preset:
# `snakemake --cores all --configfile presets/<name>.yaml`.

import os
import re
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
if SRC not in os.environ.get("PYTHONPATH", "").split(os.pathsep):  # every job (local, SLURM, conda env) imports
    os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))  # this nclab

from nclab.config import ConfigError, make_canonical, validate
from nclab.roots import configuration_name, conflict, results_root, sources, write_record
from nclab.slurm_compat import first_word_states


configfile: "config.yaml"


report: "report/workflow.rst"


first_word_states()  # sacct's "CANCELLED by 0" must end the job for the SLURM executor (nclab.slurm_compat)


OVERRIDES = workflow.config_settings.overwrite_config  # what the --configfile files and --config values set
config["name"] = configuration_name(config, OVERRIDES, workflow.overwrite_configfiles)
validate(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
make_canonical(config)  # params independent of the order of config lines and files
ROOT = results_root(config["name"])  # everything this configuration writes (nclab.roots)
MADE_OF = sources(workflow.overwrite_configfiles, workflow.config_settings.config, Path(workflow.basedir))
if workflow.exec_mode.name == "DEFAULT" and (refusal := conflict(Path(ROOT), MADE_OF, config)):
    raise ConfigError(refusal)  # before any job runs; jobs on a cluster re-read the Snakefile without checking


onstart:
    write_record(Path(ROOT), MADE_OF, config)


include: "rules/common.smk"


wildcard_constraints:
    run="|".join(map(re.escape, RUNS)),
    ratio="|".join(map(re.escape, LT_RATIOS)) or "none",
    seed=r"\d+",
    dataset=DATASET,
    epoch=r"\d+",
    method="|".join(METHODS),
    ood="|".join(OOD_SETS),
    source="|".join(TORCHVISION_SETS),
    figure="|".join(FIGURE_TABLE),
    table="|".join(TABLES),


include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/longtail.smk"
include: "rules/features.smk"
include: "rules/collapse.smk"
include: "rules/layers.smk"
include: "rules/ood.smk"
include: "rules/figures.smk"
include: "rules/report.smk"
include: "rules/longtail_report.smk"
include: "rules/external.smk"
include: "rules/paper.smk"


rule all:
    default_target: True
    input:
        f"{ROOT}/paper/paper.pdf",
        typeset_tables(),
        run_files("layers.csv", "balanced") if config["layers"]["enabled"] else [],
        run_files("layers.csv", "longtail") if config["layers"]["enabled"] else [],
