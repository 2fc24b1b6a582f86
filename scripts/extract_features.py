"""Snakemake entry point: features and logits of every split at every checkpoint of one run."""

import numpy as np
import torch

from nclab import data, training
from nclab.features import extract, load_checkpoint
from nclab.io import atomic_folder, atomic_savez, epoch_file, logged
from nclab.models import build_model, head_kind

with logged(snakemake.log[0]):
    device = training.resolve_device(snakemake.params.device)  # no CUDA for a cuda run: stop before reading
    torch.set_num_threads(snakemake.threads)
    train_set, test_set, num_classes = data.load_id(snakemake.input.data)
    splits = {"train": train_set, "test": test_set}
    splits.update({name: data.load_ood(path) for name, path in zip(snakemake.params.ood_sets, snakemake.input.ood)})
    model = build_model(num_classes=num_classes, in_channels=train_set.images.shape[1], **snakemake.params.model)
    model.to(device)
    print(f"extracting on {device} ({training.device_name(device)}), fp32")
    with atomic_folder(snakemake.output.dumps) as dumps:
        for epoch in snakemake.params.epochs:
            checkpoint = load_checkpoint(epoch_file(snakemake.input.checkpoints, epoch, ".pt"))
            model.load_state_dict(checkpoint["state_dict"])
            arrays = {name: getattr(model.fc, name).detach().cpu().numpy().copy() for name in ("weight", "bias")}
            arrays["head"] = np.array(head_kind(model.fc))
            for split, images in splits.items():
                features, logits = extract(model, images.images, checkpoint["mean"], checkpoint["std"])
                arrays.update(
                    {f"{split}_features": features, f"{split}_logits": logits, f"{split}_labels": images.labels}
                )
            atomic_savez(epoch_file(dumps, epoch, ".npz"), **arrays)
            print(f"epoch {epoch}: {arrays['train_features'].shape[1]}-dim features")
