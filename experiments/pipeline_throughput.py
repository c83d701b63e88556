"""Input pipeline and training throughput.

1. Images per second the pipeline feeds (no model): decoded-and-cached vs decoding the PNG files
   every epoch, at the study's 300x300 and at the shipped model's size.
2. Training throughput (images per second through ``train_on_batch``, pipeline included) for the
   study's regularised model and the compact shipped one, at several input sizes.

    python -m experiments.pipeline_throughput [--steps 15]
"""

from __future__ import annotations

import argparse
import time

from bench.common import STUDY_DATA, machine, require, save_results
from experiments import RESULTS
from rps.architectures import build_model, make_optimizer
from rps.augmentation import make_augmenter
from rps.datasets import open_dataset
from rps.devices import xla_setting
from rps.pipeline import make_dataset


def feed_rate(dataset, images: int) -> float:
    started = time.perf_counter()
    for _ in dataset:
        pass
    return images / (time.perf_counter() - started)


def pipeline_rates(train, size: int) -> dict:
    cached = make_dataset(train, size, 32, shuffle=True, seed=1)
    feed_rate(cached, len(train))  # first pass decodes and fills the cache
    streamed = make_dataset(train, size, 32, shuffle=True, seed=1, cache_budget=0)
    return {
        "image_size": size,
        "cached_images_per_second": round(feed_rate(cached, len(train))),
        "decode_each_epoch_images_per_second": round(feed_rate(streamed, len(train))),
    }


def training_rate(train, architecture: str, size: int, steps: int, augmentation: str) -> dict:
    model = build_model(architecture, size, 3)
    model.compile(optimizer=make_optimizer(architecture), loss="sparse_categorical_crossentropy",
                  jit_compile=xla_setting())
    data = make_dataset(train, size, 32, shuffle=True, seed=1, augment=make_augmenter(augmentation, 1))
    batches = iter(data.repeat())
    for _ in range(3):  # trace and fill the cache before timing
        model.train_on_batch(*next(batches))
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(*next(batches))
    seconds = time.perf_counter() - started
    rate = steps * 32 / seconds
    return {"architecture": architecture, "image_size": size, "augmentation": augmentation,
            "images_per_second": round(rate, 1), "seconds_per_epoch": round(len(train) / rate, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    train = open_dataset(require(STUDY_DATA)).train
    feeding = [pipeline_rates(train, size) for size in (300, 96)]
    training = [training_rate(train, "regularised", size, args.steps, "study") for size in (300, 150, 96)]
    training += [training_rate(train, "compact", size, args.steps, "robust") for size in (128, 96, 64)]
    payload = {"machine": machine(), "feeding": feeding, "training": training}
    save_results("pipeline_throughput", payload, RESULTS)
    print(payload["machine"])
    print("| size | cached (img/s) | decode each epoch (img/s) | speed-up |\n|---|---|---|---|")
    for row in feeding:
        ratio = row["cached_images_per_second"] / row["decode_each_epoch_images_per_second"]
        print(f"| {row['image_size']} | {row['cached_images_per_second']} | "
              f"{row['decode_each_epoch_images_per_second']} | {ratio:.1f}x |")
    print("\n| model | size | augmentation | train img/s | s/epoch (2520 images) |\n|---|---|---|---|---|")
    for row in training:
        print(f"| {row['architecture']} | {row['image_size']} | {row['augmentation']} | "
              f"{row['images_per_second']} | {row['seconds_per_epoch']} |")


if __name__ == "__main__":
    main()
