"""Accuracy, per-class precision/recall/F1 and the confusion matrix on a labelled split.

Every image goes through ``rps.preprocessing.Preprocessor``, the path serving uses, so the
figures are what a user gets.  A labelled photo that the pipeline declines ("no hand",
"too dark") counts as wrong, and the declines are counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rps.errors import UNREADABLE_HINT, DatasetError, ImageError
from rps.hands import KEYPOINT_COUNT, NO_HAND, TOO_DARK
from rps.images import load_rgb
from rps.inference import ModelRunner
from rps.preprocessing import Preprocessor

DECLINED = -1  # the predicted label of a photo the pipeline declined
UNREADABLE = "unreadable"  # the reason of a row whose file could not be decoded (when skipped)


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    classes: list[str]
    per_class: dict[str, dict[str, float]]  # precision, recall, f1, support
    confusion: list[list[int]]  # rows: true class, columns: predicted class (answered photos)
    count: int
    no_hand: int = 0  # labelled photos declined as "no hand" (counted as wrong)
    too_dark: int = 0  # labelled photos declined as "too dark" (counted as wrong)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PreparedSplit:
    """A split as the model takes it.  Declined rows hold zeros and a reason.

    ``pixels``: uint8 (N, size, size, 3); ``keypoints``: float32 (N, 21, 3);
    ``reasons``: None for an answered photo, else ``"no hand"``, ``"too dark"`` or
    ``"unreadable"`` (a file skipped by ``prepare_split(skip_unreadable=True)``).
    ``skipped``: one sentence per unreadable file, naming it and why.
    """

    pixels: np.ndarray
    keypoints: np.ndarray
    reasons: tuple[str | None, ...]
    skipped: tuple[str, ...] = ()

    @property
    def accepted(self) -> np.ndarray:
        return np.array([reason is None for reason in self.reasons], dtype=bool)

    @property
    def readable(self) -> np.ndarray:
        return np.array([reason != UNREADABLE for reason in self.reasons], dtype=bool)

    def rows(self, keep: np.ndarray) -> "PreparedSplit":
        """The rows where ``keep`` (bool, (N,)) is true."""
        reasons = tuple(reason for reason, kept in zip(self.reasons, keep) if kept)
        return PreparedSplit(self.pixels[keep], self.keypoints[keep], reasons, self.skipped)

    def joined(self, other: "PreparedSplit") -> "PreparedSplit":
        """This split's rows, then ``other``'s."""
        return PreparedSplit(np.concatenate([self.pixels, other.pixels]),
                             np.concatenate([self.keypoints, other.keypoints]),
                             self.reasons + other.reasons, self.skipped + other.skipped)


def shown_name(path: str | Path, root: str | Path | None) -> str:
    """``path`` relative to the dataset's ``root`` when inside it (a zip's temporary folder
    means nothing to the user), else as given."""
    path = Path(path)
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return str(path)


def prepare_split(
    paths: Sequence[str],
    preprocessor: Preprocessor,
    on_progress: Callable[[int, int], None] | None = None,
    skip_unreadable: bool = False,
    root: str | Path | None = None,
) -> PreparedSplit:
    """Decode (``rps.images.load_rgb``) and prepare every file, in order.

    A file that cannot be decoded raises ``DatasetError`` naming it (relative to ``root``)
    and why; with ``skip_unreadable`` it becomes a row with the reason ``"unreadable"`` and a
    sentence in ``skipped`` instead.
    """
    size = preprocessor.image_size
    pixels = np.zeros((len(paths), size, size, 3), np.uint8)
    keypoints = np.zeros((len(paths), KEYPOINT_COUNT, 3), np.float32)
    reasons: list[str | None] = []
    skipped: list[str] = []
    for index, path in enumerate(paths):
        try:
            prepared = preprocessor(load_rgb(path))
        except ImageError as error:
            problem = f"{shown_name(path, root)}: {error}"
            if not skip_unreadable:
                raise DatasetError(f"{problem} {UNREADABLE_HINT}") from None
            reasons.append(UNREADABLE)
            skipped.append(problem)
            if on_progress is not None:
                on_progress(index + 1, len(paths))
            continue
        reasons.append(prepared.reason)
        if prepared.pixels is not None:
            pixels[index] = prepared.pixels
        if prepared.keypoints is not None:
            keypoints[index] = prepared.keypoints
        if on_progress is not None:
            on_progress(index + 1, len(paths))
    return PreparedSplit(pixels, keypoints, tuple(reasons), tuple(skipped))


def summarise(true_labels: np.ndarray, predicted: np.ndarray, class_names: list[str],
              reasons: Sequence[str | None] = ()) -> Evaluation:
    """Build the metrics from labels alone (``DECLINED`` marks a declined photo)."""
    count = len(class_names)
    true_labels, predicted = np.asarray(true_labels), np.asarray(predicted)
    answered = predicted != DECLINED
    confusion = np.zeros((count, count), dtype=np.int64)
    np.add.at(confusion, (true_labels[answered], predicted[answered]), 1)
    per_class = {}
    for index, name in enumerate(class_names):
        true_positive = confusion[index, index]
        predicted_total = confusion[:, index].sum()
        actual_total = int((true_labels == index).sum())
        precision = true_positive / predicted_total if predicted_total else 0.0
        recall = true_positive / actual_total if actual_total else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4),
            "f1": round(float(f1), 4),
            "support": actual_total,
        }
    total = len(true_labels)
    accuracy = float(np.trace(confusion) / total) if total else 0.0
    return Evaluation(
        round(accuracy, 4), list(class_names), per_class, confusion.tolist(), total,
        no_hand=sum(reason == NO_HAND for reason in reasons),
        too_dark=sum(reason == TOO_DARK for reason in reasons),
    )


def predict_prepared(runner: ModelRunner, split: PreparedSplit, batch_size: int = 64) -> np.ndarray:
    """Predicted class per row, ``DECLINED`` where the pipeline declined the photo."""
    predicted = np.full(len(split.reasons), DECLINED, dtype=np.int64)
    accepted = split.accepted
    if accepted.any():
        probabilities = runner.run_batched(split.pixels[accepted], split.keypoints[accepted], batch_size)
        predicted[accepted] = probabilities.argmax(axis=1)
    return predicted


def evaluate_prepared(runner: ModelRunner, split: PreparedSplit, labels: Sequence[int],
                      class_names: Sequence[str], batch_size: int = 64) -> Evaluation:
    if len(labels) == 0:
        raise DatasetError("There are no images to evaluate on.")
    predicted = predict_prepared(runner, split, batch_size)
    return summarise(np.asarray(labels), predicted, list(class_names), split.reasons)


def evaluate_model(
    model,
    images,
    class_names: Sequence[str],
    image_size: int,
    input_mode: str,
    batch_size: int = 64,
) -> Evaluation:
    """Score a Keras model on a labelled split (``LabelledImages``) through the serving path."""
    if len(images) == 0:
        raise DatasetError("There are no images to evaluate on.")
    split = prepare_split(images.paths, Preprocessor(image_size, input_mode))
    return evaluate_prepared(ModelRunner(model, image_size), split, images.labels, class_names, batch_size)
