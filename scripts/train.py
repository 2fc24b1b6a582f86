"""Snakemake entry point: train one run, saving checkpoints and the per-epoch history."""

import time
from pathlib import Path

import pandas as pd
import torch

from nclab import data, training
from nclab.features import save_checkpoint
from nclab.io import atomic_path, logged
from nclab.models import build_model

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    torch.use_deterministic_algorithms(True)
    spec = dict(snakemake.params.recipe)
    seed, checkpoints = spec.pop("seed"), spec.pop("checkpoints")
    recipe = training.Recipe(**{**spec, "milestones": tuple(spec["milestones"])})
    train_set, test_set, num_classes = data.load_id(snakemake.input.data)
    mean, std = data.channel_stats(train_set.images)
    torch.manual_seed(seed)
    model = build_model(snakemake.params.model["arch"], num_classes, train_set.images.shape[1],
                        snakemake.params.model["width"])
    paths = {int(Path(p).stem.removeprefix("epoch")): p for p in snakemake.output.checkpoints}
    start = time.perf_counter()

    def report(s: training.EpochStats) -> None:
        print(f"epoch {s.epoch:4d}/{recipe.epochs}  lr {s.lr:.4g}  loss {s.train_loss:.4f}  "
              f"train acc {s.train_accuracy:.4f}  test acc {s.test_accuracy:.4f}  "
              f"({time.perf_counter() - start:.1f} s)")

    history = training.train(model, train_set, test_set, recipe, seed, checkpoints,
                             on_checkpoint=lambda e, state: save_checkpoint(paths[e], e, state, mean, std),
                             on_epoch=report)
    with atomic_path(snakemake.output.history) as tmp:
        rows = [{"schedule": snakemake.params.schedule, "seed": seed, **vars(s)} for s in history]
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.10g")
