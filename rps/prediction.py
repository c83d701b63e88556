"""Classify photos with a saved model: load once, then one call per image or per batch."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from rps.artifacts import ModelBundle, load_bundle
from rps.errors import HandDetectorError
from rps.hands import Hand, draw_skeleton
from rps.images import ImageInput, load_rgb
from rps.inference import ModelRunner
from rps.paths import ASSETS
from rps.preprocessing import Prepared, Preprocessor

# The model shipped with the project; ``Predictor()`` serves it.
SHIPPED_MODEL = ASSETS / "model"


class Prediction(dict):
    """``{class_name: probability}`` (float, summing to 1) for one photo, plus how it was seen.

    Empty when the pipeline declined the photo; ``reason`` then says why (``"no hand"``,
    ``"too dark"``).  ``crop``: RGB uint8, what the model saw: the aligned hand crop, with the
    skeleton drawn on it for models that read keypoints, or the resized photo; None when
    declined.  ``hand``: the detected hand (``rps.hands.Hand``), None in ``image`` mode.
    """

    def __init__(self, probabilities: dict[str, float], reason: str | None = None,
                 crop: np.ndarray | None = None, hand: Hand | None = None):
        super().__init__(probabilities)
        self.reason = reason
        self.crop = crop
        self.hand = hand

    @property
    def label(self) -> str | None:
        """The most probable class, or None when declined."""
        return top_label(self)


class Predictor:
    """Loads a model folder once; ``predict`` returns a ``Prediction``.

    The model folder's ``model.json`` says which input it takes (``rps.preprocessing``):
    the shipped model finds the hand and reads its aligned keypoints.  ``warning`` is
    non-empty when that pipeline runs degraded (no hand landmarker available).
    """

    def __init__(self, model_path: Path | str | None = None):
        self.bundle: ModelBundle = load_bundle(model_path or SHIPPED_MODEL)
        self.class_names: list[str] = self.bundle.class_names
        self.image_size: int = self.bundle.image_size
        self.preprocessor = Preprocessor(self.image_size, self.bundle.input_mode)
        self.warning: str = self.preprocessor.warning
        self.runner = ModelRunner(self.bundle.model, self.image_size)
        self.runner.run(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))  # trace now

    @property
    def metadata(self) -> dict:
        return self.bundle.metadata

    def prepare(self, image: ImageInput) -> Prepared:
        """The photo as the model receives it (``Prepared``), or the reason it is declined.

        ``image``: a file path, the file's bytes, a PIL image, or an array.  Arrays are RGB,
        channels last, shape (H, W, 3), (H, W, 4) (alpha composited on white) or (H, W) (grey);
        ``uint8``, ``uint16``, or float in 0..1 or 0..255.  A BGR array from OpenCV
        (``cv2.imread``, ``VideoCapture``) must be converted first
        (``cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)``): it is not detected, and scores worse.  A
        ``tf.Tensor`` is taken through ``.numpy()``.  Files are decoded by
        ``rps.images.load_rgb``, the decoder of every door (upright by EXIF, transparency on
        white, 16-bit and float scaled; PNG, JPEG, BMP, GIF, WebP, TIFF, HEIC, AVIF).
        Raises ``rps.errors.ImageError`` for input that is not a usable image.
        """
        return self.preprocessor(load_rgb(image))

    def predict(self, image: ImageInput) -> Prediction:
        """Probabilities per class for one image (path, bytes, PIL image, RGB array or
        ``tf.Tensor``; see ``prepare`` for the array conventions: RGB, not OpenCV's BGR), or an
        empty ``Prediction`` whose ``reason`` says why it was declined."""
        return self.predict_prepared(self.prepare(image))

    def predict_prepared(self, prepared: Prepared) -> Prediction:
        """Raises ``HandDetectorError`` for a keypoint model when no landmarker is available."""
        self.check_ready()
        if prepared.declined:
            return Prediction({}, prepared.reason, hand=prepared.hand)
        keypoints = None if prepared.keypoints is None else prepared.keypoints[None]
        probabilities = self.runner.run(prepared.pixels[None], keypoints)[0]
        return Prediction(self._as_dict(probabilities), crop=self._seen(prepared), hand=prepared.hand)

    def check_ready(self) -> None:
        """Raise ``HandDetectorError`` when this model needs a landmarker and none is available."""
        if self.runner.uses_keypoints and self.preprocessor.detector is None:
            raise HandDetectorError(
                f"{self.warning} This model reads hand keypoints, so it cannot classify without "
                "the landmarker."
            )

    def _seen(self, prepared: Prepared) -> np.ndarray:
        if self.runner.uses_keypoints and prepared.hand is not None:
            return draw_skeleton(prepared.pixels, prepared.keypoints)
        return prepared.pixels

    def predict_batch(self, images: Sequence[ImageInput]) -> list[Prediction]:
        if not images:
            return []
        self.check_ready()
        prepared = [self.prepare(image) for image in images]
        answered = [item for item in prepared if not item.declined]
        rows = iter(())
        if answered:
            keypoints = (np.stack([item.keypoints for item in answered])
                         if answered[0].keypoints is not None else None)
            rows = iter(self.runner.run(np.stack([item.pixels for item in answered]), keypoints))
        return [
            Prediction({}, item.reason, hand=item.hand) if item.declined
            else Prediction(self._as_dict(next(rows)), crop=self._seen(item), hand=item.hand)
            for item in prepared
        ]

    def _as_dict(self, probabilities: np.ndarray) -> dict[str, float]:
        return {name: float(p) for name, p in zip(self.class_names, probabilities)}


def top_label(probabilities: dict[str, float]) -> str | None:
    """The most probable class, or None for an empty (declined) prediction."""
    return max(probabilities, key=probabilities.get) if probabilities else None
