"""A LeNet epoch on MNIST-sized data (60,000 uint8 1x28x28 images, generated): nclab's training loop against the
bare forward and backward pass over the same images already in memory as normalised float tensors, side by side
in one run, alternating so that drift favours neither.

- nclab: ``nclab.training.train_epoch`` as a training job runs it (the uint8 set resident on the device, batched
  augmentation: random crop with 4-pixel padding and flip, normalisation; SGD with Nesterov momentum);
- bare: shuffled batches of the pre-normalised tensor, forward, cross-entropy, backward, SGD step; no
  augmentation.

Target: nclab's epoch within 1.25x the bare one. What the laptop presets cost end to end:
``benchmarks/time_presets.py``.

Usage: python benchmarks/lenet_epoch.py [--images 60000] [--batch-size 128] [--threads 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nclab import training
from nclab.data import ImageSet
from nclab.models import build_model
from nclab.objective import Objective

MEAN, STD = np.array([0.1307]), np.array([0.3081])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="epochs of each loop, alternating")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, 1, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=args.images)
    device = torch.device("cpu")
    recipe = training.Recipe(
        epochs=1, scheduler="cosine", milestones=(), gamma=0.1, warmup_epochs=0, lr=0.1, momentum=0.9,
        weight_decay=5e-4, batch_size=args.batch_size, crop_padding=4, flip=True, device="cpu", precision="fp32",
        nesterov=True,
    )  # fmt: skip
    data = training.DeviceData.of(ImageSet(images, labels), (MEAN, STD), device, None)
    tensors = training.normalise(torch.from_numpy(images), torch.tensor(MEAN).float(), torch.tensor(STD).float())
    targets = torch.from_numpy(labels)

    def model_and_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = build_model("lenet", 10, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        return model, optimizer

    nclab_model, nclab_optimizer = model_and_optimizer()
    objective = Objective("ce", "none", torch.ones(10), nclab_model.feature_dim)
    generator = torch.Generator().manual_seed(0)

    def nclab_epoch() -> None:
        training.train_epoch(
            nclab_model, nclab_model.features, objective, nclab_optimizer, data, recipe, generator, progress=0.0
        )

    bare_model, bare_optimizer = model_and_optimizer()

    def bare_epoch() -> None:
        bare_model.train()
        order = torch.randperm(args.images, generator=generator)
        for start in range(0, args.images - args.batch_size + 1, args.batch_size):
            batch = order[start : start + args.batch_size]
            loss = torch.nn.functional.cross_entropy(bare_model(tensors[batch]), targets[batch])
            bare_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            bare_optimizer.step()

    seconds = {"nclab": 0.0, "bare": 0.0}
    for _ in range(args.rounds):
        for name, epoch in (("nclab", nclab_epoch), ("bare", bare_epoch)):
            start = time.perf_counter()
            epoch()
            seconds[name] += (time.perf_counter() - start) / args.rounds
    ratio = seconds["nclab"] / seconds["bare"]
    print(
        f"LeNet, {args.images:,} images of 1x28x28, batch {args.batch_size}, CPU with {args.threads} threads, "
        f"mean of {args.rounds} epochs each; torch {torch.__version__}"
    )
    print(f"  nclab loop {seconds['nclab']:6.2f} s an epoch (augmentation included)")
    print(f"  bare loop  {seconds['bare']:6.2f} s an epoch (no augmentation)")
    print(f"  ratio      {ratio:6.2f}x (target <= 1.25x)")


if __name__ == "__main__":
    main()
