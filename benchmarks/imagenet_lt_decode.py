"""Decoding throughput of the ImageNet-LT loader (``nclab.real_data.read_images``) on real JPEGs.

No ImageNet here: the two photographs bundled with scikit-learn (427x640, the size of a typical ImageNet
image) are written as JPEGs (quality 90, as ImageNet's are roughly) under many names, then read back by the
loader at the configured size (shorter side resized, centre crop) with 1 and with --threads workers. It prints
images/s and the time the 165,846 images of ImageNet-LT's train and test lists would take at that rate.

Usage: python benchmarks/imagenet_lt_decode.py [--images 600] [--size 112] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

IMAGENET_LT_IMAGES = 115_846 + 50_000  # train and test lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from PIL import Image
    from sklearn.datasets import load_sample_images

    from nclab.real_data import read_images

    photos = load_sample_images().images
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i in range(args.images):
            path = Path(folder) / f"n{i % 1000:08d}_{i}.JPEG"
            Image.fromarray(photos[i % len(photos)]).save(path, "JPEG", quality=90)
            paths.append(path)
        for workers in sorted({1, args.threads}):
            start = time.perf_counter()
            images = read_images(paths, args.size, workers, name=f"{workers} worker(s)")
            rate = len(images) / (time.perf_counter() - start)
            print(
                f"{workers} worker(s), {args.size} px: {rate:,.0f} images/s; ImageNet-LT's "
                f"{IMAGENET_LT_IMAGES:,} images would take {IMAGENET_LT_IMAGES / rate / 60:.1f} min"
            )


if __name__ == "__main__":
    main()
