"""Train an architecture on a dataset and write a complete, self-describing run folder.

The run folder holds ``model.keras`` and ``model.json`` (see ``rps.artifacts``), ``history.csv``,
``curves.png``, ``test_metrics.json`` and ``confusion.png``.  It appears only when everything
is written; a stop or a failure leaves nothing where a model is expected.

With ``input="hand"`` (the default), every photo first takes the serving path
(``rps.preprocessing``): the hand is found and aligned once, photos without one are left out of
the fit and counted in ``model.json``, and the final validation and test figures count them as
wrong, as ``python -m rps evaluate`` does.  With ``input="image"``, ``rps.pipeline`` decodes and
resizes whole photos in ``tf.data``.
"""

from __future__ import annotations

import csv
import math
import platform
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from rps import artifacts, plots
from rps.architectures import ARCHITECTURES, build_model, input_names, make_optimizer
from rps.augmentation import Augmenter, KeypointJitter, make_augmenter
from rps.callbacks import StopOnEvent
from rps.config import TrainConfig
from rps.datasets import Dataset, LabelledImages, split_by_sequence
from rps.devices import choose_strategy, describe_device, precision_policy, xla_setting
from rps.errors import DatasetError, HandDetectorError, TrainingStopped
from rps.evaluation import Evaluation, PreparedSplit, evaluate_prepared, prepare_split
from rps.inference import ModelRunner
from rps.pipeline import DEFAULT_CACHE_BYTES, fits_in_cache, make_dataset
from rps.preprocessing import Preprocessor


@dataclass(frozen=True)
class TrainResult:
    folder: Path
    history: list[dict]
    evaluation: Evaluation | None  # on the test split, when the data has one
    validation: Evaluation
    seconds: float
    seconds_per_epoch: float
    device: str


def choose_validation(dataset: Dataset, config: TrainConfig) -> tuple[LabelledImages, LabelledImages]:
    """The validation folder when there is one, else whole sequences held out of train.

    Never the test split: it must stay unseen until the final report.
    """
    if dataset.validation is not None and len(dataset.validation):
        return dataset.train, dataset.validation
    return split_by_sequence(dataset.train, config.validation_fraction, config.seed)


def _check_batches(mirrored: bool, global_batch: int, strategy, train_count: int,
                   validation_count: int) -> None:
    if mirrored and min(train_count, validation_count) < global_batch:
        raise DatasetError(
            f"Each split needs at least one full batch of {global_batch} images across "
            f"{strategy.num_replicas_in_sync} devices; use a smaller batch size."
        )


def _empty_classes(class_names: Sequence[str], labels: Sequence[int]) -> list[str]:
    present = set(labels)
    return [name for index, name in enumerate(class_names) if index not in present]


def _check_classes(dataset: Dataset, train: LabelledImages) -> None:
    empty = _empty_classes(dataset.class_names, train.labels)
    if empty:
        raise DatasetError(f"The training data has no images of class {', '.join(empty)}.")


def _is_decode_error(error: tf.errors.InvalidArgumentError) -> bool:
    text = error.message.lower()
    return any(word in text for word in ("decode", "png", "jpeg", "bmp", "gif", "image"))


def _write_history(path: Path, history: list[dict]) -> None:
    columns = sorted({key for row in history for key in row}, key=lambda key: (key != "epoch", key))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def _history_rows(history: keras.callbacks.History) -> list[dict]:
    rows = []
    for index in range(len(history.epoch)):
        row = {"epoch": index + 1}
        row.update({key: round(float(values[index]), 6) for key, values in history.history.items()})
        rows.append(row)
    return rows


def _accepted_only(split: PreparedSplit, labels: Sequence[int]) -> tuple[PreparedSplit, tuple[int, ...]]:
    keep = split.accepted
    kept_labels = tuple(label for label, kept in zip(labels, keep) if kept)
    return PreparedSplit(split.pixels[keep], split.keypoints[keep], (None,) * int(keep.sum())), kept_labels


def hand_dataset(
    split: PreparedSplit,
    labels: Sequence[int],
    batch_size: int,
    inputs: Sequence[str],
    shuffle: bool = False,
    augment: Augmenter | None = None,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of prepared hands for ``model.fit``: (the model's ``inputs``, labels).

    The crops are already decoded, found and aligned (``rps.evaluation.prepare_split``), so
    they sit in memory as uint8: 4,000 crops at 64 px are 50 MB.  ``inputs`` names what the
    model reads (``pixels``, ``keypoints``); pixels are augmented only when read.
    """
    dataset = tf.data.Dataset.from_tensor_slices(
        ((split.pixels, split.keypoints), np.asarray(labels, np.int32))
    )
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    jitter = KeypointJitter(seed=seed) if augment is not None else None

    def to_model_inputs(batch, label):
        pixels, keypoints = batch
        given = {}
        if "pixels" in inputs:
            given["pixels"] = augment(pixels) if augment is not None else tf.cast(pixels, tf.float32)
        if "keypoints" in inputs:
            given["keypoints"] = jitter(keypoints, training=True) if jitter is not None else keypoints
        return (given if len(given) > 1 else next(iter(given.values()))), label

    return dataset.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


@dataclass(frozen=True)
class FoundHands:
    """The training and validation photos in which a hand was found, ready to fit on."""

    fit_train: PreparedSplit
    fit_train_labels: tuple[int, ...]
    fit_validation: PreparedSplit
    fit_validation_labels: tuple[int, ...]
    validation: PreparedSplit  # every validation photo, declines included, for the final score
    found: dict[str, list[int]]  # split -> [photos with a hand, photos]


def _find_hands(dataset: Dataset, train_images: LabelledImages, validation_images: LabelledImages,
                preprocessor: Preprocessor, stop_event: threading.Event, verbose,
                callbacks: Sequence[keras.callbacks.Callback] = ()) -> FoundHands:
    """Run the serving path over both splits; photos without a hand are left out of the fit.

    Raises ``HandDetectorError`` without a landmarker, ``DatasetError`` when a class has no
    hand at all, and ``TrainingStopped`` when ``stop_event`` is set meanwhile.
    """
    if preprocessor.detector is None:
        raise HandDetectorError(f"{preprocessor.warning} Training with input 'hand' needs it.")
    train = prepare_split(train_images.paths, preprocessor, _progress(stop_event, "train", verbose, callbacks))
    validation = prepare_split(validation_images.paths, preprocessor,
                               _progress(stop_event, "validation", verbose, callbacks))
    fit_train, fit_train_labels = _accepted_only(train, train_images.labels)
    _check_hands_found(dataset, fit_train_labels, len(train_images))
    fit_validation, fit_validation_labels = _accepted_only(validation, validation_images.labels)
    found = {"train": [len(fit_train_labels), len(train_images)],
             "validation": [len(fit_validation_labels), len(validation_images)]}
    return FoundHands(fit_train, fit_train_labels, fit_validation, fit_validation_labels, validation, found)


def _progress(stop_event: threading.Event, name: str, verbose: int | str,
              callbacks: Sequence[keras.callbacks.Callback] = ()):
    """Report progress now and then (printed, and to callbacks with ``on_preparation``), and
    stop between photos when asked to."""
    listeners = [callback for callback in callbacks if hasattr(callback, "on_preparation")]

    def report(done: int, total: int) -> None:
        if stop_event.is_set():
            raise TrainingStopped("Training was stopped; no model was saved.")
        if done == total or done % 25 == 0:
            for listener in listeners:
                listener.on_preparation(name, done, total)
        if verbose and (done == total or done % 500 == 0):
            print(f"Finding hands in the {name} split: {done}/{total}", flush=True)

    return report


def _check_hands_found(dataset: Dataset, labels: Sequence[int], total: int) -> None:
    missing = _empty_classes(dataset.class_names, labels)
    if missing:
        raise DatasetError(
            f"No hand was found in any training photo of class {', '.join(missing)} "
            f"({len(labels)} of {total} photos had a hand). Use photos that show a hand, or "
            "train with input 'image' for gestures that are not hands."
        )


def train(
    dataset: Dataset,
    config: TrainConfig,
    out_dir: Path | str,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    stop_event: threading.Event | None = None,
    verbose: int | str = "auto",
) -> TrainResult:
    """Train ``config.architecture`` on ``dataset`` and publish the run at ``out_dir``.

    Raises ``TrainingStopped`` when ``stop_event`` is set during training.
    """
    out_dir = Path(out_dir)
    artifacts.check_output_folder(out_dir)
    train_images, validation_images = choose_validation(dataset, config)
    _check_classes(dataset, train_images)
    keras.utils.set_random_seed(config.seed)
    class_count = len(dataset.class_names)

    strategy = choose_strategy(config.devices)
    # Under a distribution strategy the global batch is split across the replicas.
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    steps_per_epoch = math.ceil(len(train_images) / global_batch)
    decay_steps = steps_per_epoch * config.epochs if config.schedule == "cosine" else None
    with precision_policy(config.mixed_precision), strategy.scope():
        model = build_model(config.architecture, config.image_size, class_count)
        model.compile(
            optimizer=make_optimizer(
                config.architecture, config.learning_rate, decay_steps,
                total_steps=steps_per_epoch * config.epochs,
            ),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=["accuracy"],
            jit_compile=xla_setting(),
        )
    augment = make_augmenter(config.augmentation, config.seed)
    # Mirrored replicas need equal shares of every batch; a ragged last batch would not split.
    mirrored = strategy.num_replicas_in_sync > 1
    preprocessor = Preprocessor(config.image_size, config.input)
    hands_found = None
    stop_event = stop_event or threading.Event()
    if config.input == "hand":
        hands = _find_hands(dataset, train_images, validation_images, preprocessor, stop_event, verbose,
                            callbacks)
        hands_found = hands.found
        prepared_validation = hands.validation
        _check_batches(mirrored, global_batch, strategy, len(hands.fit_train_labels),
                       len(hands.fit_validation_labels))
        inputs = input_names(model)
        train_data = hand_dataset(hands.fit_train, hands.fit_train_labels, global_batch, inputs, shuffle=True,
                                  augment=augment, seed=config.seed, drop_remainder=mirrored)
        validation_data = (hand_dataset(hands.fit_validation, hands.fit_validation_labels, global_batch, inputs,
                                        drop_remainder=mirrored) if hands.fit_validation_labels else None)
    else:
        _check_batches(mirrored, global_batch, strategy, len(train_images), len(validation_images))
        train_data = make_dataset(
            train_images, config.image_size, global_batch, shuffle=True, augment=augment,
            seed=config.seed, drop_remainder=mirrored,
        )
        # When the training split streams from disk, the run is in low-memory mode: caching
        # the validation split would save a little decoding and cost the cache budget again.
        streaming = not fits_in_cache(len(train_images), config.image_size)
        validation_data = make_dataset(
            validation_images, config.image_size, global_batch, drop_remainder=mirrored,
            cache_budget=0 if streaming else DEFAULT_CACHE_BYTES,
        )

    fit_callbacks: list[keras.callbacks.Callback] = [StopOnEvent(stop_event), *callbacks]
    if config.patience:
        fit_callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            )
        )
    started = time.monotonic()
    try:
        history = model.fit(
            train_data,
            validation_data=validation_data,
            epochs=config.epochs,
            callbacks=fit_callbacks,
            verbose=verbose,
            shuffle=False,  # the tf.data pipeline already shuffles
        )
    except tf.errors.InvalidArgumentError as error:
        if not _is_decode_error(error):
            raise
        raise DatasetError(
            f"An image could not be decoded during training: {error.message.splitlines()[0]}"
        ) from None
    seconds = time.monotonic() - started
    # Free the pipelines' in-memory caches before evaluating: they can hold gigabytes.
    del train_data, validation_data
    if stop_event.is_set():
        raise TrainingStopped("Training was stopped; no model was saved.")
    rows = _history_rows(history)

    # The final figures go through the serving path: every photo of the split, declines
    # counted as wrong.
    runner = ModelRunner(model, config.image_size)
    if config.input != "hand":
        prepared_validation = prepare_split(validation_images.paths, preprocessor)
    validation = evaluate_prepared(runner, prepared_validation, validation_images.labels, dataset.class_names)
    test = None
    if dataset.test is not None and len(dataset.test):
        prepared_test = prepare_split(dataset.test.paths, preprocessor, _progress(stop_event, "test", verbose))
        test = evaluate_prepared(runner, prepared_test, dataset.test.labels, dataset.class_names)
    device = describe_device(config.devices)
    metadata = {
        "format": artifacts.FORMAT_VERSION,
        "class_names": list(dataset.class_names),
        "image_size": config.image_size,
        "input": config.input,
        "architecture": config.architecture,
        "architecture_description": ARCHITECTURES[config.architecture].description,
        "parameters": int(model.count_params()),
        "config": config.to_dict(),
        "dataset": {
            "fingerprint": dataset.fingerprint(),
            "train": len(train_images),
            "validation": len(validation_images),
            "test": len(dataset.test) if dataset.test else 0,
            "hands_found": hands_found,
        },
        "metrics": {
            "validation_accuracy": validation.accuracy,
            "test_accuracy": test.accuracy if test else None,
        },
        "training": {
            "epochs_run": len(rows),
            "seconds": round(seconds, 1),
            "seconds_per_epoch": round(seconds / max(len(rows), 1), 1),
            "device": device,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
    }

    staging = artifacts.staging_folder(out_dir)
    try:
        artifacts.save_for_inference(model, staging / artifacts.MODEL_FILE)
        artifacts.write_json(staging / artifacts.METADATA_FILE, metadata)
        _write_history(staging / "history.csv", rows)
        plots.save_figure(plots.history_figure(rows), staging / "curves.png")
        report = {"validation": validation.to_dict(), "test": test.to_dict() if test else None}
        artifacts.write_json(staging / "test_metrics.json", report)
        shown = test or validation
        title = "test set" if test else "validation set"
        plots.save_figure(
            plots.confusion_figure(shown.confusion, list(dataset.class_names), title),
            staging / "confusion.png",
        )
        folder = artifacts.publish(staging, out_dir)
    except BaseException:
        artifacts.discard(staging)
        raise
    return TrainResult(
        folder, rows, test, validation, seconds, seconds / max(len(rows), 1), device
    )
