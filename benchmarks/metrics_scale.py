"""Time and peak memory of everything computed from one checkpoint's features, at CIFAR-100 scale.

Synthetic features of the real shapes (50,000 x 512 train, 10,000 test, 26,032 SVHN; 100 classes;
non-negative like post-ReLU features, clustered by class) go through exactly what the workflow's jobs run:
all NC metrics (collapse_metrics), every OOD score of the registry fitted on train and applied to test and
SVHN, and the four OOD metrics. Prints the seconds per stage, the total and the peak resident memory.
Target: under 60 s and 4 GB on 2 CPU cores.

Then the depth analysis of one checkpoint (docs/methods.md, section 9), as the layer job runs it on the CPU:
per layer of ResNet-18 at block granularity (the stem and 8 blocks, 2x2-pooled: ``--layer-dims``), NC1 and
the per-layer detectors on synthetic features of that width, and the multi-layer detector; with the seconds
per layer and detector, the total per checkpoint and each preset's CPU-hours at that rate (the detectors of its
layers.final_only at each run's final checkpoint only).

Usage: python benchmarks/metrics_scale.py [--threads 2] [--train 50000] [--dim 512] [--classes 100]
       [--layer-dims 256,256,...] (empty: no depth analysis)
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import yaml

RESNET18_BLOCK_DIMS = (256, 256, 256, 512, 512, 1024, 1024, 2048, 512)  # stem, 8 blocks pooled 2x2 (h: global)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", type=int, default=50_000)
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--ood", type=int, default=26_032)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--layer-dims", default=",".join(map(str, RESNET18_BLOCK_DIMS)))
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy loads its BLAS

    import numpy as np

    from nclab import depth
    from nclab.collapse import collapse_metrics
    from nclab.config import default_config
    from nclab.ood import SCORES, Split, fit_score
    from nclab.ood_metrics import METRICS

    rng = np.random.default_rng(0)
    means = rng.gamma(2.0, 0.5, size=(args.classes, args.dim)).astype(np.float32)
    weight = (means - means.mean(0)).astype(np.float32)
    bias = np.zeros(args.classes, np.float32)

    def clustered(centres: np.ndarray, labels: np.ndarray | None, n: int) -> np.ndarray:
        """Post-ReLU-like features around each label's centre, or, without labels (OOD), around their mean."""
        centre = centres.mean(0) if labels is None else centres[labels]
        return np.maximum(centre + rng.normal(0, 0.6, (n, centres.shape[1])).astype(np.float32), 0)

    def split(n: int, ood: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        labels = rng.integers(0, args.classes, n)
        features = clustered(means, None if ood else labels, n)
        return features, features @ weight.T + bias, (np.full(n, -1) if ood else labels)

    dump = {"weight": weight, "bias": bias, "head": np.array("linear")}
    for name, n, ood in (("train", args.train, False), ("test", args.test, False), ("svhn", args.ood, True)):
        dump[f"{name}_features"], dump[f"{name}_logits"], dump[f"{name}_labels"] = split(n, ood)
    print(
        f"features: train {dump['train_features'].shape}, test {dump['test_features'].shape}, "
        f"svhn {dump['svhn_features'].shape}, {args.classes} classes, {args.threads} threads"
    )

    timings: dict[str, float] = {}
    start = time.perf_counter()
    metrics = collapse_metrics(dump, args.classes, ["svhn"])
    timings["NC metrics (all)"] = time.perf_counter() - start
    train = Split(dump["train_features"], dump["train_logits"], dump["train_labels"])
    hyper = default_config()["ood"]["hyperparameters"]
    sized = {
        "vim": {"dim": args.dim // 2},
        "vim_residual": {"dim": args.dim // 2},
        "neco": {"dim": args.classes - 1},
        "gen": {"top_m": min(100, args.classes)},
    }  # as the CIFAR-100 preset sets them
    scores = {}
    for method in SCORES:
        start = time.perf_counter()
        scorer = fit_score(method, train, weight, bias, **{**hyper.get(method, {}), **sized.get(method, {})})
        scores[method] = {s: scorer(Split(dump[f"{s}_features"], dump[f"{s}_logits"])) for s in ("test", "svhn")}
        timings[f"score {method}"] = time.perf_counter() - start
    start = time.perf_counter()
    table = {m: {name: fn(s["test"], s["svhn"]) for name, fn in METRICS.items()} for m, s in scores.items()}
    timings["OOD metrics"] = time.perf_counter() - start

    for stage, seconds in timings.items():
        print(f"{stage:<22} {seconds:7.2f} s")
    total = sum(timings.values())
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"{'total':<22} {total:7.2f} s   (target < 60 s)")
    print(f"{'peak RSS':<22} {peak_gb:7.2f} GB  (target < 4 GB; includes the synthetic features)")
    print(
        f"sanity: NC1 {metrics['nc1']:.3g}, AUROC energy {table['energy']['auroc']:.3f}, "
        f"knn {table['knn']['auroc']:.3f}"
    )
    per_checkpoint = total - timings["NC metrics (all)"]  # what ood_trajectory spends on each checkpoint
    print(f"trajectory: {per_checkpoint:.1f} s CPU per checkpoint (every detector, this one OOD set)")
    counts = trajectory_checkpoints()
    for preset, (checkpoints, *_) in counts.items():
        print(
            f"  {preset:<16} {checkpoints:4d} checkpoints (all seeds) -> {checkpoints * per_checkpoint / 3600:5.2f} "
            "CPU-hours of ood_trajectory"
        )
    dims = [int(d) for d in args.layer_dims.split(",") if d]
    if not dims:
        return
    print(f"depth analysis of one checkpoint: {len(dims)} layers of widths {dims}, one OOD set")
    by_depth: dict[str, dict[str, np.ndarray]] = {"train": {}, "test": {}, "svhn": {}}
    labels = dump["train_labels"]  # every layer is one of the same images: the dump's labels
    start = time.perf_counter()
    for index, dim in enumerate(dims):
        centres = rng.gamma(2.0, 0.5, size=(args.classes, dim)).astype(np.float32)
        for name, split_labels, n in (("train", labels, args.train), ("test", dump["test_labels"], args.test)):
            by_depth[name][f"layer{index}"] = clustered(centres, split_labels, n)
        by_depth["svhn"][f"layer{index}"] = clustered(centres, None, args.ood)
    print(f"  synthetic layers {time.perf_counter() - start:.1f} s")
    layer_seconds = {}
    for name, train in by_depth["train"].items():
        start = time.perf_counter()
        depth.collapse_row(train, labels, args.classes)
        seconds = {"NC": time.perf_counter() - start}
        for method, fit in depth.LAYER_DETECTORS.items():
            start = time.perf_counter()
            scorer = fit(Split(train, None, labels), args.classes, hyper["knn"]["k"])
            depth.detection(*(scorer(Split(by_depth[split][name], None)) for split in ("test", "svhn")))
            seconds[method] = time.perf_counter() - start
        layer_seconds[name] = seconds
        print(f"  {name} ({train.shape[1]:4d}-dim) " + ", ".join(f"{k} {v:6.2f} s" for k, v in seconds.items()))
    per_layer_checkpoint = sum(sum(s.values()) for s in layer_seconds.values())
    print(f"depth analysis: {per_layer_checkpoint:.1f} s CPU per checkpoint ({len(dims)} layers, one OOD set)")
    for preset, (_, checkpoints, finals, final_only) in counts.items():
        earlier = sum(v for s in layer_seconds.values() for k, v in s.items() if k not in final_only)
        hours = (finals * per_layer_checkpoint + (checkpoints - finals) * earlier) / 3600
        late = f"; {', '.join(final_only)} at the final one only" if final_only and checkpoints else ""
        print(
            f"  {preset:<16} {checkpoints:4d} checkpoints (all seeds{late}) -> {hours:5.2f} CPU-hours of layer_analysis"
        )


def trajectory_checkpoints() -> dict[str, tuple[int, int, int, list[str]]]:
    """Per preset, the checkpoints ood_trajectory measures (every run's trajectory epochs), the checkpoints of its
    trained runs (the layer analysis's, where layers.enabled) and their final checkpoints, each summed over runs
    and seeds, and the detectors of layers.final_only."""
    from snakemake.utils import update_config

    from nclab.config import REPOSITORY, default_config, validate
    from nclab.runs import run_table

    counts = {}
    for path in sorted((REPOSITORY / "presets").glob("*.yaml")):
        config = default_config()
        update_config(config, yaml.safe_load(path.read_text()))
        try:
            validate(config, REPOSITORY / "schemas" / "config.schema.yaml")
        except ValueError:  # a preset whose local data (ImageNet) is absent here: count it all the same
            pass
        every = config["ood"]["trajectory"]["every"]
        runs = run_table(config, "data.npz", "lt{ratio}.npz").values()
        trajectory = sum(len(set(r.checkpoints[::every]) | {r.checkpoints[-1]}) * len(r.seeds) for r in runs)
        trained = [r for r in runs if r.study != "external"] if config["layers"]["enabled"] else []
        counts[path.stem] = (
            trajectory,
            sum(len(r.checkpoints) * len(r.seeds) for r in trained),
            sum(len(r.seeds) for r in trained),
            config["layers"]["final_only"],
        )
    return counts


if __name__ == "__main__":
    main()
