"""Accuracy, per-class precision/recall/F1 and the confusion matrix on a labelled split."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from rps.datasets import LabelledImages
from rps.errors import DatasetError
from rps.pipeline import make_dataset


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    classes: list[str]
    per_class: dict[str, dict[str, float]]  # precision, recall, f1, support
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    count: int

    def to_dict(self) -> dict:
        return asdict(self)


def summarise(true_labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> Evaluation:
    """Build the metrics from labels alone, so they can be checked against hand counts."""
    count = len(class_names)
    confusion = np.zeros((count, count), dtype=np.int64)
    np.add.at(confusion, (true_labels, predicted), 1)
    per_class = {}
    for index, name in enumerate(class_names):
        true_positive = confusion[index, index]
        predicted_total = confusion[:, index].sum()
        actual_total = confusion[index, :].sum()
        precision = true_positive / predicted_total if predicted_total else 0.0
        recall = true_positive / actual_total if actual_total else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4),
            "f1": round(float(f1), 4),
            "support": int(actual_total),
        }
    total = int(confusion.sum())
    accuracy = float(np.trace(confusion) / total) if total else 0.0
    return Evaluation(round(accuracy, 4), list(class_names), per_class, confusion.tolist(), total)


def predict_split(
    model: keras.Model, images: LabelledImages, image_size: int, batch_size: int = 64
) -> np.ndarray:
    """Class probabilities for every image of the split, in order."""
    # One pass: caching would only hold a second copy of the split in memory.
    dataset = make_dataset(images, image_size, batch_size, cache_budget=0).map(lambda x, y: x)
    try:
        return np.concatenate([model(batch, training=False).numpy() for batch in dataset])
    except tf.errors.InvalidArgumentError as error:
        raise DatasetError(f"An image could not be decoded: {error.message.splitlines()[0]}") from None


def evaluate_model(
    model: keras.Model,
    images: LabelledImages,
    class_names: list[str] | tuple[str, ...],
    image_size: int,
    batch_size: int = 64,
) -> Evaluation:
    if len(images) == 0:
        raise DatasetError("There are no images to evaluate on.")
    probabilities = predict_split(model, images, image_size, batch_size)
    return summarise(np.asarray(images.labels), probabilities.argmax(axis=1), list(class_names))
