"""Time the laptop presets from their raw files to their PDFs, on raw files generated at the real sizes.

The real archives cannot be fetched on every machine, so this writes raw files of the real datasets' sizes in
their real formats and runs each preset on them (``snakemake --cores all`` in a scratch copy of the workflow),
with ``data.root`` pointing there and ``data.download`` off:

- MNIST, Fashion-MNIST and KMNIST: 60,000 training and 10,000 test images each, IDX files in torchvision's
  layout; each class a pattern of bright strokes on black, shifted and noisy, so that LeNet learns it;
- Textures: DTD's 5,640 JPEGs (300 to 640 px a side, 47 classes) and its label lists;
- notMNIST: 18,724 PNGs of 28x28 (the size of notMNIST_small);
- CIFAR-10 and SVHN: their archives carry checksums that generated files cannot match, so they are replaced by
  folder sets of their test sets' sizes (10,000 and 26,032 PNGs of 32x32 RGB), in the slots of the optional
  folder sets TinyImageNet and Places365; the preset's own TinyImageNet and Places365 folders are not used.

Prints per preset: the wall-clock time against its budget (OOD presets 60 min, the long-tail preset 90 min),
the number of jobs, the CPU time of each rule (from the rules' benchmark files) and the slowest jobs. The
workflow's progress goes to stderr while it runs.

Usage: python benchmarks/time_presets.py [--presets NAME ...] [--data DIR] [--configfile F] [--cores N]
[--scale F] [--dry-run] (--data keeps the generated files there for the next run; --configfile adds a config
after the override, e.g. fewer epochs for a quick look at everything but the training; --scale and --dry-run
check the script itself: smaller files, and Snakemake plans each preset on them without running it)
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from scratch import copy_workflow

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MINUTES = {"mnist-ood": 60, "fashionmnist-ood": 60, "fashionmnist-lt": 90}
MNIST_FOLDERS = {"mnist": "MNIST", "fashionmnist": "FashionMNIST", "kmnist": "KMNIST"}  # torchvision's layout
MNIST_SIZES = {"train": 60_000, "t10k": 10_000}
DTD_IMAGES, DTD_CLASSES = 5_640, 47
NOTMNIST_IMAGES = 18_724
STAND_INS = {"cifar10": ("tinyimagenet", 10_000), "svhn": ("places365", 26_032)}  # colour set -> folder slot, size
STEP = re.compile(r"\d+ of \d+ steps \(\d+%\) done")


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = {3: 0x0803, 1: 0x0801}[array.ndim]
    path.write_bytes(struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes())


def write_mnist_like(root: Path, name: str, rng: np.random.Generator, scale: float) -> None:
    """MNIST-like statistics: each class a fixed pattern of bright strokes on black (a smooth random field's top
    fifth), shifted by up to 2 pixels, at a random intensity, over a fainter pattern of a random class, with
    noise: LeNet learns it within an epoch but never perfectly, as on MNIST."""
    raw = root / MNIST_FOLDERS[name] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    fields = np.stack([np.asarray(smooth_image(rng, 32, 32, coarse=6).convert("L"), np.float64) for _ in range(10)])
    patterns = 255.0 * (fields >= np.quantile(fields, 0.8, axis=(1, 2), keepdims=True))
    windows = np.lib.stride_tricks.sliding_window_view(patterns, (28, 28), axis=(1, 2))
    for prefix, size in MNIST_SIZES.items():
        n = sized(size, scale)
        labels, others = rng.integers(0, 10, (2, n))
        dy, dx = rng.integers(0, 5, (2, n))
        strokes = windows[labels, dy, dx] * rng.uniform(0.6, 1.0, (n, 1, 1))
        distractors = windows[others, 4 - dy, 4 - dx] * rng.uniform(0.0, 0.7, (n, 1, 1))
        images = np.clip(np.maximum(strokes, distractors) + rng.normal(0, 50, (n, 28, 28)), 0, 255)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)


def smooth_image(rng: np.random.Generator, width: int, height: int, coarse: int | None = None) -> Image.Image:
    """A smooth colour image (``coarse`` x ``coarse`` noise upsampled; by default a 16th of the side), which
    compresses like a photograph rather than like noise."""
    rows, columns = (coarse, coarse) if coarse else (max(height // 16, 2), max(width // 16, 2))
    grid = rng.integers(0, 256, (rows, columns, 3), dtype=np.uint8)
    return Image.fromarray(grid).resize((width, height), Image.BILINEAR)


def write_dtd(root: Path, rng: np.random.Generator, scale: float) -> None:
    data = root / "dtd" / "dtd"
    (data / "labels").mkdir(parents=True, exist_ok=True)
    names = [f"class{i % DTD_CLASSES:02d}/image_{i:04d}.jpg" for i in range(sized(DTD_IMAGES, scale))]
    for split, part in zip(("train", "val", "test"), np.array_split(np.array(names), 3)):
        (data / "labels" / f"{split}1.txt").write_text("".join(f"{name}\n" for name in part))
    for name in names:
        path = data / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        smooth_image(rng, *rng.integers(300, 641, 2)).save(path, quality=90)


def write_folder(folder: Path, count: int, side: int, grey: bool, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = smooth_image(rng, side, side)
        (image.convert("L") if grey else image).save(folder / f"{i:05d}.png")


def sized(count: int, scale: float) -> int:
    """``count`` images at ``scale`` (--scale), at least 20 so that every class is drawn."""
    return max(round(count * scale), 20)


def generate(data: Path, scale: float) -> None:
    """Every raw file the laptop presets read, unless ``data`` already holds them (``done`` marks completion)."""
    if (data / "done").exists():
        return
    rng = np.random.default_rng(0)
    for name in MNIST_FOLDERS:
        write_mnist_like(data, name, rng, scale)
    write_dtd(data, rng, scale)
    write_folder(data / "notmnist", sized(NOTMNIST_IMAGES, scale), 28, grey=True, rng=rng)
    for slot, count in STAND_INS.values():
        write_folder(data / slot, sized(count, scale), 32, grey=False, rng=rng)
    (data / "done").touch()


def override(preset: str, data: Path) -> dict:
    """The config over the preset: the generated root, no download, the colour sets replaced by their stand-ins."""
    config = yaml.safe_load((ROOT / "presets" / f"{preset}.yaml").read_text())
    sets = [s for s in config["data"]["ood_sets"] if s not in (slot for slot, _ in STAND_INS.values())]
    replaced = [STAND_INS[s][0] if s in STAND_INS else s for s in sets]
    folders = {name: str(data / name) for name in ("notmnist", *(slot for slot, _ in STAND_INS.values()))}
    return {"data": {"root": str(data), "download": False, "ood_sets": replaced, "folders": folders}}


def rule_times(root: Path) -> tuple[dict[str, float], list[tuple[float, str]]]:
    """CPU seconds per rule and wall seconds per job, from the benchmark files of one results root."""
    per_rule: dict[str, float] = defaultdict(float)
    jobs = []
    for tsv in root.glob("benchmarks/**/*.tsv"):
        header, values = (line.split("\t") for line in tsv.read_text().splitlines()[:2])
        record = dict(zip(header, values))
        per_rule[tsv.stem] += float(record["cpu_time"]) if record.get("cpu_time", "NA") != "NA" else 0.0
        jobs.append((float(record["s"]), str(tsv.relative_to(root / "benchmarks"))))
    return dict(per_rule), sorted(jobs, reverse=True)


def time_preset(preset: str, data: Path, cores: str, extra: list[Path], dry_run: bool) -> None:
    with tempfile.TemporaryDirectory(prefix=f"nclab-{preset}-") as scratch:
        workdir = Path(scratch)
        copy_workflow(ROOT, workdir)
        (workdir / "override.yaml").write_text(yaml.safe_dump(override(preset, data)))
        configs = [f"presets/{preset}.yaml", "override.yaml", *(str(p.resolve()) for p in extra)]
        command = [sys.executable, "-m", "snakemake", "--cores", cores, "--configfile", *configs]
        if dry_run:
            plan = subprocess.run([*command, "-n", "--quiet", "rules"], cwd=workdir, capture_output=True, text=True)
            if plan.returncode != 0:
                sys.exit(f"{preset} cannot be planned:\n{plan.stderr[-3000:]}")
            total = next(line.split()[-1] for line in plan.stdout.splitlines() if line.startswith("total"))
            print(f"{preset}: {total} jobs planned on the generated files")
            return
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        log, jobs = [], 0
        for line in process.stderr:
            log.append(line)
            jobs += line.startswith("Finished jobid")
            if STEP.search(line):
                print(
                    f"  {preset}: {STEP.search(line).group(0)} after {time.perf_counter() - start:.0f} s",
                    file=sys.stderr,
                )
        elapsed = time.perf_counter() - start
        if process.wait() != 0:
            sys.exit(f"{preset} failed:\n{''.join(log[-60:])}")
        budget = BUDGET_MINUTES[preset]
        verdict = "within" if elapsed <= 60 * budget else "OVER"
        suffix = f" (+ {', '.join(p.name for p in extra)})" if extra else ""
        print(f"{preset}{suffix}: raw files -> PDF {elapsed / 60:.1f} min, {jobs} jobs, --cores {cores} "
              f"({os.cpu_count()} CPUs); {verdict} the {budget}-min budget")  # fmt: skip
        per_rule, slowest = rule_times(workdir / "results" / preset)
        total = sum(per_rule.values())
        ranked = sorted(per_rule.items(), key=lambda item: -item[1])
        print(f"  CPU time {total / 60:.1f} min: " + ", ".join(f"{r} {s / 60:.1f}" for r, s in ranked[:6]))
        print(
            "  slowest jobs: " + ", ".join(f"{name.removesuffix('.tsv')} {s / 60:.1f} min" for s, name in slowest[:3])
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", choices=sorted(BUDGET_MINUTES), default=list(BUDGET_MINUTES))
    parser.add_argument("--data", type=Path, help="where to generate (or find) the raw files (default: scratch)")
    parser.add_argument("--configfile", type=Path, nargs="*", default=[], help="configs after the override")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--scale", type=float, default=1.0, help="each set's size times this (a quick check)")
    parser.add_argument("--dry-run", action="store_true", help="plan each preset on the files, run nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nclab-raw-") as scratch:
        data = (args.data or Path(scratch)).resolve()
        started = time.perf_counter()
        generate(data, args.scale)
        print(f"raw files generated in {time.perf_counter() - started:.0f} s (not counted)", file=sys.stderr)
        for preset in args.presets:
            time_preset(preset, data, args.cores, args.configfile, args.dry_run)


if __name__ == "__main__":
    main()
