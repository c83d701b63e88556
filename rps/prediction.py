"""Classify photos with a saved model: load once, then one call per image or per batch."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from rps.artifacts import ModelBundle, load_bundle
from rps.images import ImageInput, load_rgb
from rps.pipeline import resize_for_model

# The model shipped with the project; ``Predictor()`` serves it.
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "assets" / "model"


class Predictor:
    """Loads a model folder once; ``predict`` returns ``{class_name: probability}``."""

    def __init__(self, model_path: Path | str | None = None):
        self.bundle: ModelBundle = load_bundle(model_path or SHIPPED_MODEL)
        self.class_names: list[str] = self.bundle.class_names
        self.image_size: int = self.bundle.image_size
        size = self.image_size
        model = self.bundle.model
        # One traced graph for any frame size: a Keras call per request would retrace or go
        # through the slower eager path; model.predict adds tens of milliseconds of overhead.
        self._prepare = tf.function(
            lambda image: resize_for_model(image, size),
            input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)],
        )
        self._infer = tf.function(
            lambda batch: model(tf.cast(batch, tf.float32), training=False),
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)],
        )
        self._infer(tf.zeros([1, size, size, 3], tf.uint8))  # trace now, not on the first request

    @property
    def metadata(self) -> dict:
        return self.bundle.metadata

    def prepare(self, image: ImageInput) -> np.ndarray:
        """The image exactly as the model receives it: upright RGB, resized, uint8."""
        return self._prepare(tf.constant(load_rgb(image))).numpy()

    def predict(self, image: ImageInput) -> dict[str, float]:
        """Probabilities per class for one image (path, bytes, PIL image or array)."""
        return self.predict_prepared(self.prepare(image))

    def predict_prepared(self, prepared: np.ndarray) -> dict[str, float]:
        probabilities = self._infer(prepared[None])[0].numpy().astype(np.float64)
        return self._as_dict(probabilities)

    def predict_batch(self, images: Sequence[ImageInput]) -> list[dict[str, float]]:
        if not images:
            return []
        batch = np.stack([self.prepare(image) for image in images])
        return [self._as_dict(row) for row in self._infer(batch).numpy().astype(np.float64)]

    def _as_dict(self, probabilities: np.ndarray) -> dict[str, float]:
        probabilities = probabilities / probabilities.sum()
        return {name: float(p) for name, p in zip(self.class_names, probabilities)}


def top_label(probabilities: dict[str, float]) -> str:
    return max(probabilities, key=probabilities.get)
