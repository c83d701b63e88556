"""The study's test set on plain backdrops: how much a model leans on the white behind the hands.

Webcams see walls, desks and screens, not a white studio.  Each test image's white backdrop
(found by ``rps.augmentation.background_mask``, as in training) is swapped for one flat colour,
and the model is scored on each.  No real photo is involved, so this figure may guide choices
that ``rps-real-dev`` must not.

The real photos are shot on a green screen, so the same swap is shown for them too (the green
is keyed out by colour; a thin green fringe stays around each hand).  That table only
describes a model: choosing a model or a recipe by it would be choosing on the real photos.

    python bench/backdrops.py [MODEL_FOLDER ...]   (default: the shipped model)
"""

from __future__ import annotations

import functools
import os

import numpy as np
import tensorflow as tf
from common import REAL_DEV, ROOT, STUDY_DATA, machine, model_folders, model_sha256, require, save_results

from rps.artifacts import load_bundle
from rps.augmentation import background_mask
from rps.datasets import open_dataset, read_class_folders
from rps.images import load_rgb
from rps.pipeline import make_dataset, resize_for_model

BACKDROPS = {
    "grey": (128, 128, 128),
    "black": (20, 20, 20),
    "blue": (40, 60, 200),
    "red": (200, 40, 40),
    "wall": (210, 200, 180),
    "green": (40, 160, 70),
}


def predicted_classes(model, pixels: np.ndarray) -> np.ndarray:
    return model.predict(pixels, batch_size=128, verbose=0).argmax(axis=1)


def accuracy(model, pixels: np.ndarray, labels: np.ndarray) -> float:
    return round(float(np.mean(predicted_classes(model, pixels) == labels)), 4)


def on_backdrop(images: np.ndarray, mask: np.ndarray, colour) -> np.ndarray:
    """``images`` with their backdrop (``mask`` = 1) swapped for one flat colour."""
    return images * (1.0 - mask) + np.array(colour, np.float32) * mask


@functools.lru_cache  # decoded once, however many models are scored
def rendered_test_set(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    dataset = open_dataset(require(STUDY_DATA))
    batches = list(make_dataset(dataset.test, image_size, batch_size=128, cache_budget=0))
    return (np.concatenate([images.numpy() for images, _ in batches]),
            np.concatenate([labels.numpy() for _, labels in batches]))


def backdrop_accuracies(model, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy as rendered, then per plain backdrop, then the plain backdrops' mean."""
    mask = background_mask(images).numpy()
    scores = {"as rendered": accuracy(model, images, labels)}
    for name, colour in BACKDROPS.items():
        scores[name] = accuracy(model, on_backdrop(images, mask, colour), labels)
    scores["plain mean"] = round(float(np.mean([scores[name] for name in BACKDROPS])), 4)
    return scores


@functools.lru_cache
def keyed_real_photos(class_names: tuple[str, ...]) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """The real photos at full size with their green screen found: (images, masks, labels)."""
    _, real = read_class_folders(require(REAL_DEV), class_names)
    photos = [load_rgb(path).astype(np.float32) for path in real.paths]
    masks = [((photo[..., 1] > photo[..., 0] + 25) & (photo[..., 1] > photo[..., 2] + 25))[..., None]
             for photo in photos]
    return photos, masks, np.asarray(real.labels)


def real_backdrop_accuracies(model, image_size: int, keyed) -> dict[str, float]:
    photos, masks, labels = keyed

    def swapped(swap) -> float:
        batch = np.stack([resize_for_model(tf.constant(swap(photo, mask).astype(np.uint8)), image_size).numpy()
                          for photo, mask in zip(photos, masks)])
        return accuracy(model, batch.astype(np.float32), labels)

    scores = {"as shot (green)": swapped(lambda photo, mask: photo),
              "white": swapped(lambda photo, mask: np.where(mask, 255.0, photo))}
    for name, colour in BACKDROPS.items():
        scores[name] = swapped(lambda photo, mask, colour=colour: np.where(mask, np.float32(colour), photo))
    return scores


def print_table(rows: dict[str, dict], key: str) -> None:
    columns = list(next(iter(rows.values()))[key])
    print("| model | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for folder, row in rows.items():
        print(f"| {folder} | " + " | ".join(f"{value:.1%}" for value in row[key].values()) + " |")


def main() -> None:
    rows = {}
    for folder in model_folders(__doc__.splitlines()[0]):
        bundle = load_bundle(folder)
        images, labels = rendered_test_set(bundle.image_size)
        keyed = keyed_real_photos(tuple(bundle.class_names))
        rows[os.path.relpath(folder, ROOT)] = {
            "model_sha256": model_sha256(folder),
            "test": backdrop_accuracies(bundle.model, images, labels),
            "real_dev": real_backdrop_accuracies(bundle.model, bundle.image_size, keyed),
        }
    save_results("backdrops", {"machine": machine(), "backdrops": BACKDROPS, "models": rows})
    print("Test set (372 rendered hands), white backdrop swapped:")
    print_table(rows, "test")
    print("\nReal photos (90), green screen swapped (describes, never chooses):")
    print_table(rows, "real_dev")


if __name__ == "__main__":
    main()
