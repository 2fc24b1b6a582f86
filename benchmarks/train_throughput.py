"""Training throughput of nclab's loop against a plain reference loop, same model, same machine, one run.

- fast: ``nclab.training.train_epoch``: the uint8 training set resident on the device, batched on-device
  augmentation (random crop with 4-pixel padding, horizontal flip, normalisation), channels_last and bf16
  autocast on CUDA (fp32 on CPU unless --precision bf16), optionally torch.compile;
- reference: a torch DataLoader over the same uint8 images with per-image torchvision transforms
  (RandomCrop(32, padding=4), RandomHorizontalFlip, ToDtype, Normalize), fp32, default memory layout.

Both train the same CIFAR ResNet-18 with SGD on synthetic CIFAR-shaped data (3x32x32 uint8, 100 classes)
for the same number of batches after a warm-up, and report images/s, their ratio, and the time per CIFAR-100
epoch (50,000 images) extrapolated from each. The default width is 64 (the paper's network) on a GPU and 16
on a CPU: with 2 cores the width-64 network is compute-bound (both loops ~37 img/s, where the data pipeline
cannot show), and bf16 autocast there was 20x slower than fp32 on a CPU without native bf16.

Usage: python benchmarks/train_throughput.py [--device auto|cpu|cuda] [--batches N] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

CIFAR100_TRAIN = 50_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--width", type=int, default=None, help="ResNet-18 width (default 64 GPU, 16 CPU)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=None, help="timed batches per loop (default 20 CPU, 100 GPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed batches first (default 3 CPU, 20 GPU)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch and DataLoader workers)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from nclab import training
    from nclab.models import build_model
    from nclab.objective import Objective
    from nclab.torchvision_compat import import_torchvision

    import_torchvision()
    from torchvision.transforms import v2

    torch.set_num_threads(args.threads)
    device = training.resolve_device(args.device)
    gpu = device.type == "cuda"
    batches = args.batches or (100 if gpu else 20)
    warmup = args.warmup if args.warmup is not None else (20 if gpu else 3)
    width = args.width or (64 if gpu else 16)
    n = (batches + warmup) * args.batch_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 100, size=n)
    mean, std = (0.507, 0.487, 0.441), (0.267, 0.256, 0.276)
    recipe = training.Recipe(epochs=1, scheduler="cosine", milestones=(), lr=0.1, momentum=0.9, weight_decay=5e-4,
                             batch_size=args.batch_size, crop_padding=4, flip=True, device=args.device,
                             precision=args.precision, compile=args.compile)

    def model_and_optimizer(layout: torch.memory_format) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = build_model("resnet18", 100, 3, width).to(device=device, memory_format=layout)
        return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

    def sync() -> None:
        if gpu:
            torch.cuda.synchronize()

    # fast loop: train_epoch over device-resident uint8 images, one block of batches per call
    fast_model, fast_optimizer = model_and_optimizer(training.memory_format(device))
    encode = torch.compile(fast_model.features) if args.compile else fast_model.features
    objective = Objective("ce", "none", torch.ones(100, device=device), fast_model.feature_dim)
    dtype = training.autocast_dtype(args.precision, device)
    x = torch.from_numpy(images).to(device)
    y = torch.from_numpy(labels).to(device)
    m, s = (torch.tensor(v, device=device) for v in (mean, std))
    generator = torch.Generator().manual_seed(0)

    def fast_block(first: int, count: int) -> None:
        block = slice(first * args.batch_size, (first + count) * args.batch_size)
        training.train_epoch(fast_model, encode, objective, fast_optimizer, x[block], y[block], m, s, recipe,
                             generator, dtype, progress=0.0)

    # reference loop: DataLoader + per-image transforms, fp32, default memory layout
    transform = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
                            v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])

    class Images(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return transform(torch.from_numpy(images[i])), int(labels[i])

    workers = min(4, os.cpu_count() or 1) if gpu else 0  # on CPU, workers would compete with the model
    loader = torch.utils.data.DataLoader(Images(), batch_size=args.batch_size, shuffle=True, num_workers=workers,
                                         pin_memory=gpu, drop_last=True)
    batches_out = iter(loader)
    ref_model, ref_optimizer = model_and_optimizer(torch.contiguous_format)
    ref_model.train()

    def reference_block(first: int, count: int) -> None:
        for _ in range(count):
            xb, yb = next(batches_out)
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            loss = torch.nn.functional.cross_entropy(ref_model(xb), yb)
            ref_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            ref_optimizer.step()
            loss.item()

    # warm both up, then time them in alternating halves so that drift and warm-up order favour neither
    fast_block(0, warmup)
    reference_block(0, warmup)
    elapsed = {"fast": 0.0, "reference": 0.0}
    half = batches // 2
    for first, count in ((warmup, half), (warmup + half, batches - half)):
        for name, block in (("fast", fast_block), ("reference", reference_block)):
            sync()
            start = time.perf_counter()
            block(first, count)
            sync()
            elapsed[name] += time.perf_counter() - start
    fast, reference = (batches * args.batch_size / elapsed[k] for k in ("fast", "reference"))

    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {args.threads} threads"
    precision = "bf16 autocast" if dtype is not None else "fp32"
    print(f"device: {name}; ResNet-18 width {width}, batch {args.batch_size}, {batches} timed batches "
          f"after {warmup} warm-up; torch {torch.__version__}")
    print(f"fast loop ({precision}{', compiled' if args.compile else ''}): {fast:9.1f} img/s   "
          f"-> {CIFAR100_TRAIN / fast:8.1f} s per CIFAR-100 epoch")
    print(f"reference loop (DataLoader, {workers} workers, per-image transforms, fp32): {reference:9.1f} img/s   "
          f"-> {CIFAR100_TRAIN / reference:8.1f} s per CIFAR-100 epoch")
    print(f"speed-up: {fast / reference:.2f}x")


if __name__ == "__main__":
    main()
