"""From a decoded photo to what the model takes: the one path for serving, evaluation and training.

A model folder's ``model.json`` names its ``input``:

* ``"hand"`` (the default and the shipped model's): exposure normalised, the hand found by the
  landmarker, then the aligned crop and its 21 keypoints (``rps.hands``).  A frame without a
  hand is declined with the reason ``"no hand"``, a black one with ``"too dark"``.
* ``"image"``: the whole photo resized (aspect kept, edges extended), as models trained before
  the hand pipeline, and gestures the landmarker cannot see (objects, not hands), take it.

``Preprocessor`` is what ``Predictor``, ``evaluate`` and ``train`` all call, so a figure from
``python -m rps evaluate`` is what a user of the app gets.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from rps.config import INPUT_MODES
from rps.errors import ConfigError, HandDetectorError
from rps.hands import NO_HAND, TOO_DARK, Hand, HandDetector, KEYPOINT_COUNT, align_hand, normalise_exposure

log = logging.getLogger(__name__)

_detector: HandDetector | None = None
_detector_error: str | None = None
_detector_lock = threading.Lock()


def shared_detector() -> HandDetector:
    """One landmarker per process (it holds two TFLite graphs); raises ``HandDetectorError``."""
    global _detector, _detector_error
    with _detector_lock:
        if _detector is None and _detector_error is None:
            try:
                _detector = HandDetector()
            except HandDetectorError as error:
                _detector_error = str(error)
        if _detector is None:
            raise HandDetectorError(_detector_error)
        return _detector


@dataclass(frozen=True)
class Prepared:
    """One photo as the model takes it, or the reason it was declined.

    ``pixels``: uint8 (size, size, 3), the aligned hand crop or the resized photo; None when
    declined.  ``keypoints``: float32 (21, 3) in the crop's frame, zeros when the landmarker
    was unavailable, None in ``image`` mode.  ``reason``: None, ``"no hand"`` or ``"too dark"``.
    """

    pixels: np.ndarray | None
    keypoints: np.ndarray | None = None
    hand: Hand | None = None
    reason: str | None = None

    @property
    def declined(self) -> bool:
        return self.reason is not None


class Preprocessor:
    """RGB uint8 (H, W, 3) frame -> ``Prepared``, for one input mode and size.

    In ``hand`` mode without a usable landmarker (mediapipe missing, model file gone),
    ``warning`` says why and ``detector`` is None: the whole photo stands in for the crop, with
    zero keypoints.  A model that reads only pixels still answers (less well in real rooms);
    ``rps.prediction.Predictor`` refuses to guess for one that reads keypoints.
    """

    def __init__(self, image_size: int, mode: str = "hand", detector: HandDetector | None = None):
        if mode not in INPUT_MODES:
            raise ConfigError(f"Unknown input {mode!r}; choose from {', '.join(INPUT_MODES)}.")
        self.image_size = image_size
        self.mode = mode
        self.warning = ""
        self.detector = detector
        self._resize_whole = None  # traced on first use: only whole-photo paths need TensorFlow
        if mode == "hand" and detector is None:
            try:
                self.detector = shared_detector()
            except HandDetectorError as error:
                self.warning = f"Hand detection is unavailable: {error}"
                log.warning(self.warning)

    def __call__(self, image: np.ndarray) -> Prepared:
        if self.mode == "image":
            return Prepared(self.resize_whole(image))
        exposed, too_dark = normalise_exposure(image)
        if too_dark:
            return Prepared(None, reason=TOO_DARK)
        if self.detector is None:
            return Prepared(self.resize_whole(exposed),
                            np.zeros((KEYPOINT_COUNT, 3), np.float32))
        hand = self.detector.detect(exposed)
        if hand is None:
            return Prepared(None, reason=NO_HAND)
        crop, keypoints = align_hand(exposed, hand, self.image_size)
        return Prepared(crop, keypoints, hand)


    def resize_whole(self, image: np.ndarray) -> np.ndarray:
        """The whole photo, longer side to ``image_size``, the shorter one extended by its edges.

        ``rps.pipeline.resize_for_model`` (the resize training uses), traced once for any frame
        size: run eagerly, its TensorFlow ops cost several milliseconds per frame.
        """
        if self._resize_whole is None:
            import tensorflow as tf

            from rps.pipeline import resize_for_model

            size = self.image_size
            self._resize_whole = tf.function(
                lambda frame: resize_for_model(frame, size),
                input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)],
            )
        return self._resize_whole(image).numpy()
