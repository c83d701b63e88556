"""Figures of a model folder (default: the shipped one) against the shipped-model goals.

Accuracy on the study's test set, its validation folder and the real photos (never trained
on; also mirrored, so that their hands enter from the left), model file size, single-frame
latency of ``Predictor.predict`` on a 640x480 RGB frame (decode-free array input, resize and
inference included), batched throughput, and the training time recorded in the model's
metadata.

    python bench/shipped_model.py [--model assets/model]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import (REAL_DEV, ROOT, STUDY_DATA, machine, mirrored_accuracy, model_sha256, p50_p95, require,
                    save_results)

from rps.artifacts import MODEL_FILE
from rps.datasets import open_dataset, read_class_folders
from rps.evaluation import evaluate_model
from rps.prediction import Predictor

GOALS = {
    "test_accuracy": ">= 99%",
    "real_dev_accuracy": ">= 90%",
    "model_megabytes": "<= 5 MB",
    "training_minutes": "<= 15",
    "latency_p50_ms": "<= 10 ms",
    "batched_images_per_second": ">= 300",
}


def latency(predictor: Predictor, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(8)]
    for frame in frames:
        predictor.predict(frame)  # warm up
    timings = []
    for index in range(repeats):
        started = time.perf_counter()
        predictor.predict(frames[index % len(frames)])
        timings.append((time.perf_counter() - started) * 1000)
    p50, p95 = p50_p95(timings)
    return {"latency_p50_ms": round(p50, 2), "latency_p95_ms": round(p95, 2)}


def throughput(predictor: Predictor, batch: int = 64, rounds: int = 10) -> float:
    size = predictor.image_size
    images = np.random.default_rng(1).integers(0, 255, (batch, size, size, 3), dtype=np.uint8)
    predictor._infer(images)
    started = time.perf_counter()
    for _ in range(rounds):
        predictor._infer(images).numpy()
    return round(batch * rounds / (time.perf_counter() - started), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "assets" / "model")
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    predictor = Predictor(args.model)
    model, names, size = predictor.bundle.model, predictor.class_names, predictor.image_size
    dataset = open_dataset(require(STUDY_DATA))
    _, real = read_class_folders(require(REAL_DEV), tuple(names))
    test = evaluate_model(model, dataset.test, names, size)
    validation = evaluate_model(model, dataset.validation, names, size)
    real_dev = evaluate_model(model, real, names, size)
    training = predictor.metadata.get("training", {})
    figures = {
        "test_accuracy": test.accuracy,
        "validation_accuracy": validation.accuracy,
        "real_dev_accuracy": real_dev.accuracy,
        "real_dev_mirrored_accuracy": mirrored_accuracy(model, real, size),
        "model_megabytes": round((args.model / MODEL_FILE).stat().st_size / 1e6, 2),
        "training_minutes": round(training.get("seconds", float("nan")) / 60, 1),
        **latency(predictor, args.repeats),
        "batched_images_per_second": throughput(predictor),
    }
    payload = {
        "machine": machine(), "model": str(args.model), "model_sha256": model_sha256(args.model),
        "figures": figures,
        "confusion": {"test": test.confusion, "validation": validation.confusion, "real_dev": real_dev.confusion},
        "per_class_real_dev": real_dev.per_class,
    }
    save_results("shipped_model", payload)
    print(payload["machine"])
    print("| figure | measured | goal |\n|---|---|---|")
    for key, value in figures.items():
        shown = f"{value:.1%}" if key.endswith("accuracy") else value
        print(f"| {key} | {shown} | {GOALS.get(key, '')} |")
    for split, matrix in payload["confusion"].items():
        print(f"confusion {split} (rows true {names}): {matrix}")


if __name__ == "__main__":
    main()
