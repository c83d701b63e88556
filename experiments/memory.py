"""Bounded memory: train on a synthetic 27-class dataset of 50,000 images at 200x200.

The study ran out of memory on a 27-class alphabet because it loaded every image.  Here the
pipeline streams from disk when the decoded set exceeds the cache budget (50,000 x 200 x 200 x 3
bytes = 6 GB), so peak memory stays flat.  The images are written once to ``--data`` (reused
on later runs) as PNGs of coloured shapes; the benchmark trains the baseline CNN for one epoch
and reports the process's peak resident memory.

    python -m experiments.memory [--images 50000] [--data /tmp/rps-27-classes]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.common import machine, peak_rss_mb, save_results
from experiments import RESULTS
from rps.config import TrainConfig
from rps.datasets import open_dataset
from rps.pipeline import DEFAULT_CACHE_BYTES, fits_in_cache
from rps.training import train

CLASSES = [chr(ord("a") + index) for index in range(26)] + ["space"]


def write_dataset(root: Path, images: int, size: int) -> Path:
    if (root / "done").exists():
        return root
    rng = np.random.default_rng(0)
    per_class = images // len(CLASSES)
    for label_index, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(150, 255, 3)))
            draw = ImageDraw.Draw(image)
            # A class is a number of vertices and a hue band; noise makes files incompressible.
            points = rng.uniform(20, size - 20, (3 + label_index % 9, 2))
            draw.polygon([tuple(p) for p in points], fill=(label_index * 9 % 255, 80, 200 - label_index * 7))
            pixels = np.asarray(image).astype(np.int16) + rng.integers(-12, 12, (size, size, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                folder / f"{name}{index // 50:03d}-{index % 50:03d}.png", compress_level=1)
    (root / "done").write_text("ok")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--image-size", type=int, default=200)
    parser.add_argument("--data", type=Path, default=Path("/tmp/rps-27-classes"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/rps-27-classes-run"))
    args = parser.parse_args()
    started = time.monotonic()
    write_dataset(args.data, args.images, args.image_size)
    written = time.monotonic() - started
    dataset = open_dataset(args.data, verify=False)
    decoded_gb = len(dataset.train) * args.image_size**2 * 3 / 1e9
    print(f"{len(dataset.train)} images in {len(dataset.class_names)} classes "
          f"({decoded_gb:.1f} GB decoded; streamed: {not fits_in_cache(len(dataset.train), args.image_size)})")
    import shutil

    shutil.rmtree(args.out, ignore_errors=True)
    config = TrainConfig(architecture="baseline", input="image", image_size=args.image_size, batch_size=32, epochs=1,
                         augmentation="none", patience=0, schedule="constant")
    before = peak_rss_mb()
    result = train(dataset, config, args.out, verbose=2)
    payload = {
        "machine": machine(), "images": len(dataset.train),
        "classes": len(dataset.class_names), "image_size": args.image_size,
        "decoded_gigabytes": round(decoded_gb, 2), "cache_budget_gigabytes": DEFAULT_CACHE_BYTES / 1e9,
        "peak_rss_megabytes_before_training": round(before),
        "peak_rss_megabytes": round(peak_rss_mb()), "goal_megabytes": 3000,
        "training_seconds": round(result.seconds), "dataset_write_seconds": round(written),
        "validation_accuracy": result.validation.accuracy,
    }
    save_results("memory", payload, RESULTS)
    print(payload)


if __name__ == "__main__":
    main()
