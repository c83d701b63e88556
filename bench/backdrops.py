"""The study's test set on plain backdrops: how much a model leans on the white behind the hands.

Webcams see walls, desks and screens, not a white studio.  Each test image's white backdrop
(found by ``rps.augmentation.background_mask``, as in training) is swapped for one flat colour,
and the model is scored on each.  No real photo is involved, so this figure may guide choices
that ``rps-real-dev`` must not.

    python bench/backdrops.py [MODEL_FOLDER ...]   (default: the shipped model)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import ROOT, STUDY_DATA, machine, model_sha256, require, save_results

from rps.artifacts import load_bundle
from rps.augmentation import background_mask
from rps.datasets import open_dataset
from rps.pipeline import make_dataset

BACKDROPS = {
    "grey": (128, 128, 128),
    "black": (20, 20, 20),
    "blue": (40, 60, 200),
    "red": (200, 40, 40),
    "wall": (210, 200, 180),
    "green": (40, 160, 70),
}


def test_images(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    dataset = open_dataset(require(STUDY_DATA))
    batches = list(make_dataset(dataset.test, image_size, batch_size=128, cache_budget=0))
    return (np.concatenate([images.numpy() for images, _ in batches]),
            np.concatenate([labels.numpy() for _, labels in batches]))


def backdrop_accuracies(model, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy as rendered, then per plain backdrop, then the plain backdrops' mean."""
    mask = background_mask(images).numpy()

    def accuracy(pixels: np.ndarray) -> float:
        predicted = model.predict(pixels, batch_size=128, verbose=0).argmax(axis=1)
        return round(float(np.mean(predicted == labels)), 4)

    scores = {"as rendered": accuracy(images)}
    for name, colour in BACKDROPS.items():
        scores[name] = accuracy(images * (1.0 - mask) + np.array(colour, np.float32) * mask)
    scores["plain mean"] = round(float(np.mean([scores[name] for name in BACKDROPS])), 4)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="*", default=[ROOT / "assets" / "model"])
    args = parser.parse_args()
    rows = {}
    for folder in args.models:
        bundle = load_bundle(folder)
        images, labels = test_images(bundle.image_size)
        rows[str(folder)] = {"model_sha256": model_sha256(folder),
                             "accuracy": backdrop_accuracies(bundle.model, images, labels)}
    save_results("backdrops", {"machine": machine(), "backdrops": BACKDROPS, "models": rows})
    columns = list(next(iter(rows.values()))["accuracy"])
    print("| model | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for folder, row in rows.items():
        print(f"| {folder} | " + " | ".join(f"{value:.1%}" for value in row["accuracy"].values()) + " |")


if __name__ == "__main__":
    main()
