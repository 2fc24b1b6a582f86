"""Snakemake entry point: train one run, saving checkpoints, the per-epoch history and how it was computed
(compute.json: device, precision, compile, layout and the measured speed).

Checkpoints and the resumable state are written to the run's resume folder (not a declared output, so
Snakemake does not delete it before a restart); the checkpoints of the recipe's epochs are moved into the
declared checkpoint folder only when training ends.
"""

import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, set before CUDA starts

import pandas as pd
import torch

from nclab import data, training
from nclab.features import save_checkpoint
from nclab.io import atomic_folder, atomic_path, epoch_file, logged
from nclab.models import build_model

with logged(snakemake.log[0]):
    spec = dict(snakemake.params.recipe)
    training.resolve_device(spec["device"])  # no CUDA for a cuda run: stop now, before reading the data
    torch.set_num_threads(snakemake.threads)
    torch.use_deterministic_algorithms(True)
    seed, checkpoints = spec.pop("seed"), spec.pop("checkpoints")
    recipe = training.Recipe(**{**spec, "milestones": tuple(spec["milestones"])})
    train_set, test_set, num_classes = data.load_id(snakemake.input.data)
    mean, std = data.channel_stats(train_set.images)
    torch.manual_seed(seed)
    model = build_model(num_classes=num_classes, in_channels=train_set.images.shape[1], **snakemake.params.model)
    resume_dir = Path(snakemake.params.resume_dir)
    resume = training.Resume(
        resume_dir / "state.pt",
        training.fingerprint(snakemake.params.recipe, snakemake.params.model, files=[snakemake.input.data]),
    )
    staged = {epoch: epoch_file(resume_dir / "checkpoints", epoch, ".pt") for epoch in checkpoints}
    start = time.perf_counter()

    def report(s: training.EpochStats) -> None:
        print(
            f"epoch {s.epoch:4d}/{recipe.epochs}  lr {s.lr:.4g}  loss {s.train_loss:.4f}  "
            f"train acc {s.train_accuracy:.4f}  test acc {s.test_accuracy:.4f}  "
            f"({time.perf_counter() - start:.1f} s)"
        )

    run = training.train(
        model,
        train_set,
        test_set,
        recipe,
        seed,
        checkpoints,
        on_checkpoint=lambda e, state: save_checkpoint(staged[e], e, state, mean, std),
        on_epoch=report,
        resume=resume,
        normalisation=(mean, std),
    )
    with atomic_folder(snakemake.output.checkpoints) as folder:
        for epoch, path in staged.items():
            os.replace(path, epoch_file(folder, epoch, ".pt"))
    with atomic_path(snakemake.output.history) as tmp:
        rows = [{**snakemake.params.run_keys, "seed": seed, **vars(s)} for s in run.history]
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.10g")
    with atomic_path(snakemake.output.compute) as tmp:
        tmp.write_text(json.dumps({"setup": vars(run.setup), "speed": vars(run.speed)}, indent=1) + "\n")
    shutil.rmtree(resume_dir)
