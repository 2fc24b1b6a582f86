"""Training throughput of nclab's loop against a plain reference loop, same model, same machine, one run.

- fast: ``nclab.training.train_epoch``: the uint8 training set resident on the device, batched on-device
  augmentation (random crop with 4-pixel padding, horizontal flip, normalisation), channels_last and bf16
  autocast on CUDA (fp32 on CPU unless --precision bf16); with --compile, also the same loop compiled;
- reference: a torch DataLoader over the same uint8 images with per-image transforms (random crop with
  4-pixel zero padding, horizontal flip, scaling and normalisation: torchvision's RandomCrop,
  RandomHorizontalFlip, ToDtype and Normalize, written in plain torch so that no torchvision is needed), fp32,
  default memory layout.

Each trains its own copy of the same CIFAR ResNet-18 with SGD on synthetic CIFAR-shaped data (3x32x32 uint8,
100 classes) for the same number of batches after a warm-up (for a compiled loop, the warm-up includes the
compilation and is reported apart), and reports images/s, the time per CIFAR-100 epoch (50,000 images)
extrapolated from it, the peak GPU memory, and the speed-up over the reference. The loops are timed in
alternating halves so that drift and order favour none. The default width is 64 (the paper's network) on a
GPU and 16 on a CPU: with 2 cores the width-64 network is compute-bound (both loops ~37 img/s, where the data
pipeline cannot show), and bf16 autocast there was 20x slower than fp32 on a CPU without native bf16.

Usage: python benchmarks/train_throughput.py [--device auto|cpu|cuda] [--compile] [--batches N] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from nclab import training
from nclab.data import ImageSet
from nclab.models import build_model
from nclab.objective import Objective

CIFAR100_TRAIN = 50_000
MEAN, STD = (0.507, 0.487, 0.441), (0.267, 0.256, 0.276)


@dataclass(frozen=True)
class LoopSpeed:
    name: str
    images_per_second: float
    warmup_seconds: float  # the untimed first batches: the compilation of a compiled loop
    peak_memory_gb: float  # peak GPU memory allocated by torch (0 on a CPU)

    @property
    def seconds_per_cifar100_epoch(self) -> float:
        return CIFAR100_TRAIN / self.images_per_second


def reference_transform(image: torch.Tensor, padding: int) -> torch.Tensor:
    """One uint8 (C, H, W) image: random crop with zero padding, random horizontal flip, to float in [0, 1],
    normalised per channel, as torchvision's per-image transforms do (with torch's global generator)."""
    _, h, w = image.shape
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    top, left = (int(v) for v in torch.randint(0, 2 * padding + 1, (2,)))
    image = padded[:, top : top + h, left : left + w]
    if torch.rand(()) < 0.5:
        image = image.flip(2)
    return (image.float() / 255.0 - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


class ReferenceImages(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return reference_transform(torch.from_numpy(self.images[i]), 4), int(self.labels[i])


def compare_loops(
    device: torch.device,
    width: int,
    batch_size: int,
    batches: int,
    warmup: int,
    threads: int,
    precision: str = "auto",
    compiled: bool = False,
    log: Callable[[str], None] = print,
) -> list[LoopSpeed]:
    """Time the fast loop (and, with ``compiled``, the fast loop compiled) against the reference loop."""
    gpu = device.type == "cuda"
    n = (batches + warmup) * batch_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 100, size=n)
    recipe = training.Recipe(
        epochs=1,
        scheduler="cosine",
        milestones=(),
        gamma=0.1,
        warmup_epochs=0,
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        batch_size=batch_size,
        crop_padding=4,
        flip=True,
        device=device.type,
        precision=precision,
    )
    data = training.DeviceData.of(
        ImageSet(images, labels), (np.array(MEAN), np.array(STD)), device, training.autocast_dtype(precision, device)
    )

    def model_and_optimizer(memory_format: torch.memory_format) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = build_model("resnet18", 100, 3, width).to(device=device, memory_format=memory_format)
        return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

    def fast_loop(compile_model: bool) -> Callable[[int, int], None]:
        model, optimizer = model_and_optimizer(data.layout)
        encode = torch.compile(model.features) if compile_model else model.features
        objective = Objective("ce", "none", torch.ones(100, device=device), model.feature_dim)
        generator = torch.Generator().manual_seed(0)

        def block(first: int, count: int) -> None:
            part = slice(first * batch_size, (first + count) * batch_size)
            training.train_epoch(model, encode, objective, optimizer, data[part], recipe, generator, progress=0.0)

        return block

    def reference_loop() -> Callable[[int, int], None]:
        workers = min(4, os.cpu_count() or 1) if gpu else 0  # on a CPU, workers would compete with the model
        loader = torch.utils.data.DataLoader(
            ReferenceImages(images, labels),
            batch_size=batch_size,
            shuffle=True,
            num_workers=workers,
            pin_memory=gpu,
            drop_last=True,
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(0),
        )
        batches_out = iter(loader)
        model, optimizer = model_and_optimizer(torch.contiguous_format)
        model.train()

        def block(first: int, count: int) -> None:
            for _ in range(count):
                xb, yb = next(batches_out)
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss.item()

        log(f"reference loop: DataLoader with {workers} workers, per-image transforms, fp32")
        return block

    def sync() -> None:
        if gpu:
            torch.cuda.synchronize()

    def timed(block: Callable[[int, int], None], first: int, count: int) -> tuple[float, float]:
        """Seconds of ``count`` batches from ``first``, and the peak GPU memory meanwhile (GB)."""
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        sync()
        start = time.perf_counter()
        block(first, count)
        sync()
        return time.perf_counter() - start, torch.cuda.max_memory_allocated() / 1e9 if gpu else 0.0

    loops = {"fast": fast_loop(False)}
    if compiled:
        loops["fast, compiled"] = fast_loop(True)
    loops["reference"] = reference_loop()
    warm, elapsed, peak = {}, dict.fromkeys(loops, 0.0), dict.fromkeys(loops, 0.0)
    for name, block in loops.items():
        log(f"warming up the {name} loop ({warmup} batches{', compiling' if 'compiled' in name else ''})")
        warm[name], peak[name] = timed(block, 0, warmup)
    half = batches // 2
    for first, count in ((warmup, half), (warmup + half, batches - half)):
        for name, block in loops.items():
            seconds, memory = timed(block, first, count)
            elapsed[name] += seconds
            peak[name] = max(peak[name], memory)
    return [LoopSpeed(name, batches * batch_size / elapsed[name], warm[name], peak[name]) for name in loops]


def describe(device: torch.device, threads: int) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} threads"


def print_speeds(speeds: list[LoopSpeed]) -> None:
    reference = next(s for s in speeds if s.name == "reference")
    for s in speeds:
        print(
            f"  {s.name:15s} {s.images_per_second:9.1f} img/s -> {s.seconds_per_cifar100_epoch:8.2f} s per "
            f"CIFAR-100 epoch; {s.images_per_second / reference.images_per_second:5.2f}x the reference; "
            f"warm-up {s.warmup_seconds:.1f} s; peak GPU memory {s.peak_memory_gb:.2f} GB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--compile", action="store_true", help="also time the fast loop compiled")
    parser.add_argument("--width", type=int, default=None, help="ResNet-18 width (default 64 GPU, 16 CPU)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=None, help="timed batches per loop (default 20 CPU, 100 GPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed batches first (default 3 CPU, 20 GPU)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = training.resolve_device(args.device)
    gpu = device.type == "cuda"
    batches = args.batches or (100 if gpu else 20)
    warmup = args.warmup if args.warmup is not None else (20 if gpu else 3)
    width = args.width or (64 if gpu else 16)
    speeds = compare_loops(device, width, args.batch_size, batches, warmup, args.threads, args.precision, args.compile)
    print(
        f"device: {describe(device, args.threads)}; ResNet-18 width {width}, batch {args.batch_size}, "
        f"{batches} timed batches after {warmup} warm-up; torch {torch.__version__}; "
        f"{'bf16 autocast' if training.autocast_dtype(args.precision, device) else 'fp32'} (fast loop)"
    )
    print_speeds(speeds)


if __name__ == "__main__":
    main()
