"""Run a Keras model on prepared inputs: one traced graph, whatever the model's inputs are."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rps.architectures import input_names
from rps.hands import KEYPOINT_COUNT


class ModelRunner:
    """``run(pixels, keypoints)`` -> float64 probabilities (B, classes).

    ``pixels``: uint8 (B, size, size, 3), the crop or the resized photo.  ``keypoints``:
    float32 (B, 21, 3) in the crop's frame.  Each model reads the inputs it has
    (``rps.architectures.input_names``): the shipped one only the keypoints, the study's CNNs
    only the pixels.  A ``tf.function`` with a fixed signature: a Keras call per request would
    retrace or take the slower eager path, and ``model.predict`` adds tens of milliseconds.
    """

    def __init__(self, model: keras.Model, image_size: int):
        self.model = model
        self.image_size = image_size
        names = input_names(model)
        self.uses_keypoints = "keypoints" in names

        def infer(pixels, keypoints):
            given = {"pixels": tf.cast(pixels, tf.float32), "keypoints": keypoints}
            inputs = {name: given[name] for name in names}
            return model(inputs if len(names) > 1 else inputs[names[0]], training=False)

        self._infer = tf.function(infer, input_signature=[
            tf.TensorSpec([None, image_size, image_size, 3], tf.uint8),
            tf.TensorSpec([None, KEYPOINT_COUNT, 3], tf.float32),
        ])

    def run(self, pixels: np.ndarray, keypoints: np.ndarray | None = None) -> np.ndarray:
        if keypoints is None:
            keypoints = np.zeros((len(pixels), KEYPOINT_COUNT, 3), np.float32)
        return self._infer(pixels, keypoints.astype(np.float32)).numpy().astype(np.float64)

    def run_batched(self, pixels: np.ndarray, keypoints: np.ndarray | None = None,
                    batch_size: int = 64) -> np.ndarray:
        if len(pixels) == 0:
            return np.zeros((0, self.model.output_shape[-1]))
        return np.concatenate([
            self.run(pixels[start:start + batch_size],
                     None if keypoints is None else keypoints[start:start + batch_size])
            for start in range(0, len(pixels), batch_size)
        ])


def prepared_inputs(prepared) -> dict[str, np.ndarray]:
    """One ``rps.preprocessing.Prepared`` photo as a batch of one for a model's named inputs:
    ``pixels`` float32 (1, size, size, 3) in 0..255 and ``keypoints`` float32 (1, 21, 3), zeros
    when there are none (as ``ModelRunner.run`` gives them).  Each model reads the ones it has."""
    keypoints = prepared.keypoints if prepared.keypoints is not None else np.zeros((KEYPOINT_COUNT, 3))
    return {"pixels": prepared.pixels[None].astype(np.float32), "keypoints": keypoints[None].astype(np.float32)}
