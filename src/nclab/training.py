"""Training loop: SGD on an objective (cross-entropy for the balanced study; a long-tail loss composed with an
alignment strategy, :mod:`nclab.objective`), batched on-device augmentation.

Schedulers: ``cosine`` anneals over all epochs (the seed report's standard schedule); ``multistep``
multiplies the learning rate by ``gamma`` (0.1) at given fractions of the epochs (300 and 450 of 600 for the
extended schedule); ``warmup_multistep`` first raises it linearly over ``warmup_epochs`` (the long-tail recipe
of Cao et al. 2019: 5 warm-up epochs, x0.01 at 80 % and 90 % of 200).

Speed: the whole uint8 training set lives on the device and each batch is augmented there (random crop with
zero padding, horizontal flip, normalisation); on CUDA the model runs channels_last under bf16 autocast,
optionally compiled (CPU runs keep the default layout: :func:`memory_format`). Every random draw of an epoch
(order, crop offsets, flips) is made at its start by one CPU generator and sent to the device at once, so a CPU
and a GPU run follow the same sequence, differ only by precision, and the GPU never waits for a per-batch
transfer.
A resumable run saves its whole state (weights, optimiser, scheduler, generator, history) after every epoch
and continues from it bit-exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from nclab.data import ImageSet, channel_stats
from nclab.io import atomic_path
from nclab.objective import Objective


@dataclass(frozen=True)
class Recipe:
    epochs: int
    scheduler: str  # "cosine", "multistep" or "warmup_multistep"
    milestones: tuple[float, ...]  # fractions of the epochs (multistep only)
    gamma: float  # learning-rate factor at each milestone
    warmup_epochs: int  # warmup_multistep only
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    crop_padding: int
    flip: bool
    device: str = "auto"  # "auto" (cuda when available), "cpu" or "cuda"
    precision: str = "auto"  # "auto" (bf16 on cuda, fp32 on cpu), "fp32" or "bf16"
    compile: bool = False
    nesterov: bool = False  # Nesterov momentum
    final_lr: float = 0.0  # the learning rate the cosine ends at (cosine only)
    loss: str = "ce"  # nclab.losses.LOSSES
    loss_options: Mapping[str, float] = field(default_factory=dict)
    strategy: str = "none"  # nclab.alignment.STRATEGIES
    strategy_options: Mapping[str, float] = field(default_factory=dict)
    momentum_centres: float | None = None  # EMA momentum of the class centres a strategy follows (none: None)


class NoCudaError(RuntimeError):
    """``training.device: cuda`` where torch sees no CUDA device."""


def resolve_device(name: str) -> torch.device:
    """The torch device of a ``training.device`` setting; 'cuda' without a CUDA device stops at once."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        why = (
            "this torch is a CPU build"
            if torch.version.cuda is None
            else f"this torch is built for CUDA {torch.version.cuda} but finds no GPU on this machine"
        )
        raise NoCudaError(
            f"training.device is 'cuda' but no CUDA device is available: {why} (torch {torch.__version__}). "
            "Either run on a GPU node with the CUDA build of torch (NCLAB_TORCH=cuda bash tools/setup.sh "
            "installs it), or, to compute on the CPU deliberately, set training.device: cpu (a config file "
            "after the preset: --configfile presets/<name>.yaml cpu.yaml, cpu.yaml holding "
            "'training: {device: cpu}'; a paper-scale schedule then takes days per run)"
        )
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name (from /proc/cpuinfo where there is one)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "CPU"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a precision setting, None for plain fp32."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return torch.bfloat16 if precision == "bf16" else None


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite."""


SCHEDULERS = ("cosine", "multistep", "warmup_multistep")  # the schema's scheduler (a test checks)


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe) -> torch.optim.lr_scheduler.LRScheduler:
    if recipe.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs, eta_min=recipe.final_lr)
    milestones = [round(f * recipe.epochs) for f in recipe.milestones]
    if recipe.scheduler == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=recipe.gamma)
    if recipe.scheduler == "warmup_multistep":

        def factor(done: int) -> float:  # ``done`` epochs finished; epoch done + 1 comes next
            if done < recipe.warmup_epochs:
                return (done + 1) / recipe.warmup_epochs
            return recipe.gamma ** sum(done >= m for m in milestones)

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    raise ValueError(f"unknown scheduler {recipe.scheduler!r}; allowed: {list(SCHEDULERS)}")


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float, scaled to [0, 1] then standardised per channel."""
    return (images.float() / 255.0 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


@dataclass(frozen=True)
class Augmentation:
    """One epoch's random draws, one entry per sample: crop offsets (rows, columns) and flips."""

    dy: torch.Tensor | None
    dx: torch.Tensor | None
    flip: torch.Tensor | None

    @staticmethod
    def draw(n: int, padding: int, flip: bool, generator: torch.Generator) -> "Augmentation":
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator) if padding else None
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator) if padding else None
        flips = torch.rand(n, generator=generator) < 0.5 if flip else None
        return Augmentation(dy, dx, flips)

    def to(self, device: torch.device) -> "Augmentation":
        return Augmentation(*(None if t is None else t.to(device) for t in (self.dy, self.dx, self.flip)))

    def __getitem__(self, idx: slice) -> "Augmentation":
        return Augmentation(*(None if t is None else t[idx] for t in (self.dy, self.dx, self.flip)))


def augment(images: torch.Tensor, padding: int, draws: Augmentation) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, on a whole uint8 batch at once."""
    n, _, h, w = images.shape
    device = images.device
    if padding:
        padded = nn.functional.pad(images, (padding,) * 4)
        rows = (draws.dy.view(n, 1) + torch.arange(h, device=device).view(1, h)).view(n, 1, h, 1)
        cols = (draws.dx.view(n, 1) + torch.arange(w, device=device).view(1, w)).view(n, 1, 1, w)
        batch_idx = torch.arange(n, device=device).view(n, 1, 1, 1)
        chan_idx = torch.arange(images.shape[1], device=device).view(1, -1, 1, 1)
        images = padded[batch_idx, chan_idx, rows, cols]
    if draws.flip is not None:
        images = torch.where(draws.flip.view(n, 1, 1, 1), images.flip(3), images)
    return images


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (tensor-core friendly); the default layout on CPU, where oneDNN (torch 2.13.0)
    corrupted memory when training channels_last networks as narrow as width 2."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


@dataclass(frozen=True)
class Setup:
    """How a run computes: what every training log starts with and what the paper states."""

    device: str  # "cuda" or "cpu"
    device_name: str
    precision: str  # "bf16 autocast" or "fp32"
    compile: bool
    channels_last: bool
    torch: str
    threads: int

    @staticmethod
    def of(device: torch.device, dtype: torch.dtype | None, compiled: bool) -> "Setup":
        return Setup(
            device.type,
            device_name(device),
            "bf16 autocast" if dtype is not None else "fp32",
            compiled,
            memory_format(device) == torch.channels_last,
            torch.__version__,
            torch.get_num_threads(),
        )

    def __str__(self) -> str:
        return (
            f"device {self.device} ({self.device_name}), precision {self.precision}, "
            f"compile {'on' if self.compile else 'off'}, channels_last {'on' if self.channels_last else 'off'}, "
            f"torch {self.torch}, {self.threads} CPU thread(s)"
        )


@dataclass(frozen=True)
class DeviceData:
    """One split resident on the compute device, and how its batches enter the model: uint8 images, labels, the
    per-channel normalisation, the memory layout (channels_last on CUDA) and the autocast dtype (None: fp32)."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    layout: torch.memory_format
    dtype: torch.dtype | None

    @staticmethod
    def of(
        split: ImageSet, normalisation: tuple[np.ndarray, np.ndarray], device: torch.device, dtype: torch.dtype | None
    ) -> "DeviceData":
        mean, std = (torch.tensor(v, dtype=torch.float32, device=device) for v in normalisation)
        images, labels = (torch.from_numpy(a).to(device) for a in (split.images, split.labels))
        return DeviceData(images, labels, mean, std, memory_format(device), dtype)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, part: slice) -> "DeviceData":
        return replace(self, images=self.images[part], labels=self.labels[part])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``images`` of this split as the model takes them: normalised, in the layout."""
        return normalise(images, self.mean, self.std).contiguous(memory_format=self.layout)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)


@torch.no_grad()
def evaluate(model: nn.Module, data: DeviceData, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` in eval mode on ``data``."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=data.device)
    correct = torch.zeros((), dtype=torch.int64, device=data.device)
    for start in range(0, len(data), batch_size):
        x = data.inputs(data.images[start : start + batch_size])
        y = data.labels[start : start + batch_size]
        with data.autocast():
            logits = model(x).float()
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    return loss_sum.item() / len(data), correct.item() / len(data)


def train_epoch(
    model: nn.Module,
    encode: Callable[[torch.Tensor], torch.Tensor],
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    data: DeviceData,
    recipe: Recipe,
    generator: torch.Generator,
    progress: float,
) -> tuple[float, float]:
    """One pass over ``data``; returns (mean loss, accuracy) on augmented batches.

    ``encode`` maps images to features (``model.features``, possibly compiled); the loss is accumulated on the
    device (no per-step synchronisation) and checked once per epoch.
    """
    model.train()
    order = torch.randperm(len(data), generator=generator).to(data.device)
    draws = Augmentation.draw(len(data), recipe.crop_padding, recipe.flip, generator).to(data.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=data.device)
    correct = torch.zeros((), dtype=torch.int64, device=data.device)
    for start in range(0, len(order), recipe.batch_size):
        batch = slice(start, start + recipe.batch_size)
        idx = order[batch]
        x = data.inputs(augment(data.images[idx], recipe.crop_padding, draws[batch]))
        with data.autocast():
            features = encode(x)
            logits = model.fc(features)
            loss = objective(logits.float(), features.float(), data.labels[idx], progress, model.fc)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        objective.after_backward(model.fc)
        optimizer.step()
        objective.after_step(model.fc)
        loss_sum += loss.detach() * len(idx)
        correct += (logits.argmax(1) == data.labels[idx]).sum()
    return loss_sum.item() / len(order), correct.item() / len(order)


def fingerprint(*parts: object, files: Sequence[str | Path] = ()) -> str:
    """SHA-256 of JSON-serialisable ``parts`` and the contents of ``files``: what a saved state belongs to."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    for path in files:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Resume:
    """Where a run keeps its last state (outside the job's declared outputs) and what the state belongs to."""

    path: Path
    fingerprint: str

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # a state file cut short by a crash is discarded, never trusted
            print(f"ignoring unreadable training state {self.path}: {err}")
            return None
        if state.get("fingerprint") != self.fingerprint:
            print(f"ignoring training state {self.path}: it belongs to another recipe or dataset")
            return None
        return state

    def save(self, state: dict) -> None:
        with atomic_path(self.path) as tmp:
            torch.save({**state, "fingerprint": self.fingerprint}, tmp)


@dataclass(frozen=True)
class Speed:
    """Measured training speed of the epochs a process ran. The first epoch (warm-up: cuDNN autotuning, the
    compilation of a compiled model) is reported apart; the rates are over the epochs after it (over it
    alone when it is the only one)."""

    epochs: int
    first_epoch_seconds: float
    images_per_second: float  # training passes only
    seconds_per_epoch: float  # training pass + evaluation on the test set

    @staticmethod
    def of(timings: Sequence[tuple[float, float]], images: int) -> "Speed":
        if not timings:
            return Speed(0, math.nan, math.nan, math.nan)
        steady = timings[1:] or timings
        return Speed(
            len(timings),
            timings[0][1],
            images * len(steady) / sum(t for t, _ in steady),
            sum(e for _, e in steady) / len(steady),
        )

    def __str__(self) -> str:
        if not self.epochs:
            return "no epoch run in this process"
        return (
            f"{self.images_per_second:,.0f} img/s, {self.seconds_per_epoch:.2f} s/epoch (evaluation included) "
            f"over {max(self.epochs - 1, 1)} epoch(s); first epoch {self.first_epoch_seconds:.2f} s"
        )


@dataclass(frozen=True)
class TrainingRun:
    history: list[EpochStats]
    setup: Setup
    speed: Speed


@dataclass
class Session:
    """What a training run updates, set up on its device: the data, optimiser, scheduler, objective, generator
    and the history of the epochs done."""

    train: DeviceData
    test: DeviceData
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    objective: Objective
    generator: torch.Generator
    history: list[EpochStats]

    def state_dict(self, model: nn.Module) -> dict:
        return {
            "model": model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "objective": self.objective.state_dict(),
            "history": [asdict(h) for h in self.history],
        }

    def load_state_dict(self, model: nn.Module, state: dict) -> None:
        model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.objective.load_state_dict(state["objective"])
        self.history = [EpochStats(**row) for row in state["history"]]


def set_up(
    model: nn.Module,
    train_set: ImageSet,
    test_set: ImageSet,
    recipe: Recipe,
    seed: int,
    normalisation: tuple[np.ndarray, np.ndarray] | None,
) -> Session:
    """Move ``model`` and both splits to the recipe's device; build the optimiser, scheduler and objective."""
    device = resolve_device(recipe.device)
    dtype = autocast_dtype(recipe.precision, device)
    normalisation = channel_stats(train_set.images) if normalisation is None else normalisation
    train_data, test_data = (DeviceData.of(split, normalisation, device, dtype) for split in (train_set, test_set))
    model.to(device=device, memory_format=train_data.layout)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay,
    )
    counts = torch.bincount(train_data.labels, minlength=model.fc.weight.shape[0])
    objective = Objective(
        recipe.loss,
        recipe.strategy,
        counts,
        model.feature_dim,
        recipe.loss_options,
        recipe.strategy_options,
        recipe.momentum_centres,
    )
    return Session(
        train_data,
        test_data,
        optimizer,
        make_scheduler(optimizer, recipe),
        objective,
        torch.Generator().manual_seed(seed),
        [],
    )


def train(
    model: nn.Module,
    train_set: ImageSet,
    test_set: ImageSet,
    recipe: Recipe,
    seed: int,
    checkpoint_epochs: Sequence[int],
    on_checkpoint: Callable[[int, dict[str, torch.Tensor]], None],
    on_epoch: Callable[[EpochStats], None] = lambda stats: None,
    resume: Resume | None = None,
    normalisation: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainingRun:
    """Train ``model`` in place; call ``on_checkpoint(epoch, state_dict)`` (CPU tensors) at each listed epoch.

    The log starts with the run's :class:`Setup` and ends with its measured speed (:class:`Speed`).

    ``normalisation`` is the per-channel (mean, std), :func:`channel_stats` of ``train_set`` when None (a caller
    that already has it saves a pass over the images).

    With ``resume``, the state saved after the last finished epoch is restored first and a new one is saved
    after every epoch (after that epoch's checkpoint), so a killed run continues where it stopped.
    """
    session = set_up(model, train_set, test_set, recipe, seed, normalisation)
    setup = Setup.of(session.train.device, session.train.dtype, recipe.compile)
    print(f"{setup}\ntraining {len(train_set.labels)} images, batch {recipe.batch_size}, {recipe.epochs} epochs")
    state = resume.load() if resume else None
    if state is not None:
        session.load_state_dict(model, state)
        print(f"resuming after epoch {len(session.history)} from {resume.path}")
    encode = torch.compile(model.features) if recipe.compile else model.features
    timings: list[tuple[float, float]] = []  # (training pass, whole epoch) seconds of each epoch run here
    for epoch in range(len(session.history) + 1, recipe.epochs + 1):
        lr = session.optimizer.param_groups[0]["lr"]
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(
            model,
            encode,
            session.objective,
            session.optimizer,
            session.train,
            recipe,
            session.generator,
            progress=(epoch - 1) / recipe.epochs,
        )
        trained = time.perf_counter() - start  # train_epoch's .item() waits for the device
        if not (math.isfinite(train_loss) and all(torch.isfinite(p).all() for p in model.parameters())):
            raise DivergenceError(f"training diverged at epoch {epoch}: mean loss = {train_loss}")
        session.scheduler.step()
        test_loss, test_acc = evaluate(model, session.test, 4 * recipe.batch_size)
        timings.append((trained, time.perf_counter() - start))
        stats = EpochStats(epoch, lr, train_loss, train_acc, test_loss, test_acc)
        session.history.append(stats)
        on_epoch(stats)
        if epoch in checkpoint_epochs:
            on_checkpoint(epoch, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
        if resume:
            resume.save(session.state_dict(model))
    speed = Speed.of(timings, len(train_set.labels))
    print(f"measured: {speed}")
    return TrainingRun(session.history, setup, speed)
