"""The study's test set with its hands shrunk: how small a hand the model still reads, per class.

A webcam user stands back, and the real photos' hands fill less of the frame than the renders'.
Each test image is scaled down about its centre and framed in white again, then scored as
rendered and with the white swapped for the plain backdrops of ``bench/backdrops.py``.  No
real photo is involved, so this figure may guide choices.

    python bench/hand_size.py [MODEL_FOLDER ...]   (default: the shipped model)
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from backdrops import BACKDROPS, on_backdrop, predicted_classes, rendered_test_set
from common import ROOT, machine, model_folders, model_sha256, save_results

from rps.artifacts import load_bundle
from rps.augmentation import background_mask

SCALES = (1.0, 0.8, 0.65)


def shrunk(images: np.ndarray, scale: float) -> np.ndarray:
    """Hands scaled by ``scale`` about the frame's centre, on white."""
    size = images.shape[1]
    inner = round(size * scale)
    start = (size - inner) // 2
    framed = np.full_like(images, 255.0)
    framed[:, start:start + inner, start:start + inner] = tf.image.resize(images, (inner, inner)).numpy()
    return framed


def per_class_accuracy(model, images: np.ndarray, labels: np.ndarray, class_names) -> dict[str, float]:
    predicted = predicted_classes(model, images)
    scores = {name: float(np.mean(predicted[labels == index] == index))
              for index, name in enumerate(class_names)}
    scores["all"] = float(np.mean(predicted == labels))
    return {name: round(value, 4) for name, value in scores.items()}


def size_accuracies(model, images: np.ndarray, labels: np.ndarray, class_names) -> dict[str, dict]:
    """Per scale: accuracy on white, and the mean over the plain backdrops."""
    rows = {}
    for scale in SCALES:
        small = shrunk(images, scale)
        mask = background_mask(small).numpy()
        plain = [per_class_accuracy(model, on_backdrop(small, mask, colour), labels, class_names)
                 for colour in BACKDROPS.values()]
        rows[f"{scale:.0%} on white"] = per_class_accuracy(model, small, labels, class_names)
        rows[f"{scale:.0%} on plain (mean)"] = {name: round(float(np.mean([row[name] for row in plain])), 4)
                                               for name in plain[0]}
    return rows


def main() -> None:
    results = {}
    for folder in model_folders(__doc__.splitlines()[0]):
        bundle = load_bundle(folder)
        images, labels = rendered_test_set(bundle.image_size)
        rows = size_accuracies(bundle.model, images, labels, bundle.class_names)
        name = os.path.relpath(folder, ROOT)
        results[name] = {"model_sha256": model_sha256(folder), "rows": rows}
        columns = list(next(iter(rows.values())))
        print(f"\n{name}: test hands (372) shrunk about the centre, accuracy per class")
        print("| hand size | " + " | ".join(columns) + " |")
        print("|---|" + "---|" * len(columns))
        for row, scores in rows.items():
            print(f"| {row} | " + " | ".join(f"{scores[column]:.1%}" for column in columns) + " |")
    save_results("hand_size", {"machine": machine(), "scales": SCALES, "models": results})


if __name__ == "__main__":
    main()
