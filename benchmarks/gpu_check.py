"""`make gpu-check`: prove and time the CUDA path in one command, with nothing downloaded.

(a) training: ResNet-18 (width 64) on CIFAR-100-shaped synthetic data (3x32x32 uint8, 100 classes, batch
    128): the fast loop with compile off and on (compilation timed apart) against the plain reference loop,
    same model, one run (benchmarks/train_throughput.py); img/s, s per 50,000-image epoch, peak GPU memory;
(b) feature extraction of one checkpoint's dump: train 50,000 + test 10,000 + OOD 40,000 images through
    nclab.features.extract, and the dump written as the workflow writes it;
(c) the workflow end to end on presets/synthetic-cifar.yaml (a few epochs) in a scratch copy, training and
    features on the GPU, to the PDF where latexmk is present, else to every artifact before it; the runs'
    compute.json must say where they ran (without a GPU: its data, training and feature jobs only);
(d) the same short training (same seed, same data) on the CPU in fp32 and on the GPU in bf16: final training
    loss and test accuracy must agree within TOLERANCE.

Without CUDA it says so plainly, runs (a), (b), (c) and the CPU half of (d) at a reduced size on the CPU,
and exits 0 when they pass (so the test suite runs it). It needs only torch, numpy, pandas, scikit-learn and
matplotlib (plus snakemake, jsonschema and pyyaml for (c), which is skipped with a message without them),
and the repository's src/ (no installation). It ends with one summary line; --json writes the figures.

Usage: python benchmarks/gpu_check.py [--device auto|cpu|cuda] [--json PATH] [--skip-workflow]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from train_throughput import compare_loops, describe, print_speeds  # noqa: E402

from nclab import data, training  # noqa: E402
from nclab.features import extract  # noqa: E402
from nclab.models import build_model  # noqa: E402

# (d): |CPU fp32 - GPU bf16| after the same 3 epochs; bf16 rounding changes the trajectory, not the outcome
TOLERANCE = {"train_loss": 0.15, "test_accuracy": 0.05}
SIZES = {  # full on a GPU; reduced on a CPU (2 cores) so that the test suite can run the command
    "cuda": {"width": 64, "batches": 100, "warmup": 20, "dump": {"train": 50_000, "test": 10_000, "ood": 40_000}},
    "cpu": {"width": 8, "batches": 8, "warmup": 2, "dump": {"train": 2_000, "test": 500, "ood": 1_000}},
}
WORKFLOW_ON_CPU = {  # (c) without a GPU: the synthetic preset shrunk to a CPU-sized run
    "data": {
        "synthetic": {
            "synthetic_cifar": {"num_classes": 10, "train_per_class": 40, "test_per_class": 10},
            "photos": {"count": 100, "patch_size": 128},
            "noise": {"count": 100},
        }
    },
    "model": {"width": 4},
    "training": {"device": "cpu"},
    "ood": {"hyperparameters": {"vim": {"dim": 16}, "vim_residual": {"dim": 16}, "neco": {"dim": 9}, "knn": {"k": 10}}},
}


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def check_training_speed(device: torch.device, size: dict) -> dict:
    section(f"(a) training speed: ResNet-18 width {size['width']}, batch 128, {size['batches']} timed batches")
    speeds = compare_loops(
        device, size["width"], 128, size["batches"], size["warmup"], torch.get_num_threads(), compiled=True
    )
    print_speeds(speeds)
    return {
        s.name: {
            "images_per_second": s.images_per_second,
            "seconds_per_epoch": s.seconds_per_cifar100_epoch,
            "warmup_seconds": s.warmup_seconds,
            "peak_memory_gb": s.peak_memory_gb,
        }
        for s in speeds
    }


def check_feature_extraction(device: torch.device, size: dict) -> dict:
    counts = size["dump"]
    section(f"(b) feature extraction of one checkpoint's dump: {sum(counts.values()):,} images")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = build_model("resnet18", 100, 3, size["width"]).to(device)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    splits = {name: rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8) for name, n in counts.items()}
    extract(model, splits["test"][:512], mean, std)  # warm-up (cuDNN autotuning)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    arrays = {}
    for name, images in splits.items():
        arrays[f"{name}_features"], arrays[f"{name}_logits"] = extract(model, images, mean, std)
    extracted = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as scratch:
        np.savez(Path(scratch) / "dump.npz", **arrays)
    total = time.perf_counter() - start
    images = sum(counts.values())
    print(f"  extraction {extracted:.2f} s ({images / extracted:,.0f} img/s), with the dump written {total:.2f} s")
    return {
        "images": images,
        "extract_seconds": extracted,
        "dump_seconds": total,
        "images_per_second": images / extracted,
    }


def short_training(device_name: str) -> training.TrainingRun:
    """3 epochs of ResNet-18 (width 16) on 10 synthetic classes, seed 0, fp32 on a CPU and bf16 on a GPU."""
    train_set, test_set = data.synthetic_cifar(10, 100, 30, seed=0)
    recipe = training.Recipe(
        epochs=3,
        scheduler="cosine",
        milestones=(),
        gamma=0.1,
        warmup_epochs=0,
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
        batch_size=128,
        crop_padding=4,
        flip=True,
        device=device_name,
    )
    torch.manual_seed(0)
    return training.train(build_model("resnet18", 10, 3, 16), train_set, test_set, recipe, 0, [], lambda e, s: None)


def check_cpu_against_gpu(gpu: bool) -> dict:
    section("(d) the same short training on the CPU (fp32)" + (" and on the GPU (bf16)" if gpu else ""))
    runs = {"cpu": short_training("cpu").history[-1]}
    if gpu:
        runs["cuda"] = short_training("cuda").history[-1]
    result = {}
    for key in TOLERANCE:
        values = {name: getattr(last, key) for name, last in runs.items()}
        line = ", ".join(f"{name} {value:.4f}" for name, value in values.items())
        if gpu:
            gap = abs(values["cpu"] - values["cuda"])
            result[key] = {**values, "difference": gap, "tolerance": TOLERANCE[key], "ok": gap <= TOLERANCE[key]}
            line += f": difference {gap:.4f} (tolerance {TOLERANCE[key]}) {'ok' if gap <= TOLERANCE[key] else 'FAILED'}"
        else:
            result[key] = values
        print(f"  final {key}: {line}")
    if not gpu:
        print("  GPU half skipped: no CUDA device")
    return result


def check_workflow(gpu: bool) -> dict:
    """On a GPU the whole workflow; on a CPU its GPU jobs only (data, training, features): the CPU analysis that
    follows them is the test suite's tiny workflow."""
    pdf = "results/synthetic-cifar/paper/paper.pdf" if gpu and shutil.which("latexmk") else None
    if pdf:
        target, scope = [pdf], pdf
    elif gpu:
        target, scope = ["--omit-from", "paper"], "every artifact before the paper (latexmk not found)"
    else:
        target, scope = ["--until", "extract_features"], "its GPU jobs (data, training and features)"
    section(f"(c) the workflow on presets/synthetic-cifar.yaml{'' if gpu else ', reduced to a CPU-sized run'}: {scope}")
    missing = [m for m in ("snakemake", "jsonschema", "yaml") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"  skipped: {missing} not importable (pip install snakemake jsonschema pyyaml)")
        return {"skipped": f"missing {missing}"}
    from scratch import copy_workflow

    with tempfile.TemporaryDirectory(prefix="nclab-gpu-check-") as scratch:
        workdir = Path(scratch)
        copy_workflow(ROOT, workdir)
        configs = ["--configfile", "presets/synthetic-cifar.yaml"]
        if not gpu:
            import yaml

            (workdir / "cpu.yaml").write_text(yaml.safe_dump(WORKFLOW_ON_CPU))
            configs.append("cpu.yaml")
        command = [sys.executable, "-m", "snakemake", *target, "--cores", "all", *configs]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            print(result.stderr[-4000:])
            return {"ok": False, "seconds": seconds}
        computes = [
            json.loads(p.read_text()) for p in sorted(workdir.glob("results/synthetic-cifar/runs/*/seed*/compute.json"))
        ]
        devices = sorted({c["setup"]["device"] for c in computes})
        ok = devices == ["cuda" if gpu else "cpu"] and (pdf is None or (workdir / pdf).is_file())
        speeds = [c["speed"]["images_per_second"] for c in computes]
        print(
            f"  {'ok' if ok else 'FAILED'}: {len(computes)} runs trained on {devices} "
            f"({', '.join(f'{s:,.0f}' for s in speeds)} img/s), workflow {seconds:.0f} s"
        )
        return {"ok": ok, "seconds": seconds, "devices": devices, "images_per_second": speeds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--skip-workflow", action="store_true", help="leave (c) out")
    args = parser.parse_args()

    device = training.resolve_device(args.device)
    gpu = device.type == "cuda"
    if not gpu:
        why = "this torch is a CPU build" if torch.version.cuda is None else "torch finds no CUDA device"
        print(
            f"NO GPU FOUND ({why}; torch {torch.__version__}): running the CPU version at a reduced size. "
            "The figures below are not GPU figures."
        )
    torch.set_num_threads(min(os.cpu_count() or 1, 16))
    size = SIZES[device.type]
    print(f"gpu-check on {describe(device, torch.get_num_threads())}, torch {torch.__version__}")
    report = {
        "device": describe(device, torch.get_num_threads()),
        "torch": torch.__version__,
        "training": check_training_speed(device, size),
        "features": check_feature_extraction(device, size),
        "workflow": {"skipped": "--skip-workflow"} if args.skip_workflow else check_workflow(gpu),
        "cpu_vs_gpu": check_cpu_against_gpu(gpu),
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    off_tolerance = [f"cpu_vs_gpu.{k}" for k, v in report["cpu_vs_gpu"].items() if v.get("ok") is False]
    failed = ["workflow"] * (report["workflow"].get("ok") is False) + off_tolerance
    fast, compiled, reference = (report["training"][k] for k in ("fast", "fast, compiled", "reference"))
    workflow = report["workflow"]
    print(
        f"\ngpu-check: {report['device']}{'' if gpu else ' (NO GPU: reduced CPU run)'}, torch {torch.__version__}; "
        f"fast loop {fast['images_per_second']:,.0f} img/s ({fast['seconds_per_epoch']:.2f} s/epoch), compiled "
        f"{compiled['images_per_second']:,.0f} img/s (compile {compiled['warmup_seconds']:.0f} s), reference "
        f"{reference['images_per_second']:,.0f} img/s "
        f"({fast['images_per_second'] / reference['images_per_second']:.2f}x); "
        f"dump of {report['features']['images']:,} images {report['features']['dump_seconds']:.2f} s; "
        f"workflow {'skipped' if 'skipped' in workflow else ('ok' if workflow['ok'] else 'FAILED')}; "
        f"CPU vs GPU {('FAILED' if off_tolerance else 'within tolerance') if gpu else 'GPU half skipped'}"
        + (f"; FAILED: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
