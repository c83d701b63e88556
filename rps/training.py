"""Train an architecture on a dataset and write a complete, self-describing run folder.

The run folder holds ``model.keras`` and ``model.json`` (see ``rps.artifacts``), ``history.csv``,
``curves.png``, ``test_metrics.json`` and ``confusion.png``.  It appears only when everything
is written; a stop or a failure leaves nothing where a model is expected.
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
import tensorflow as tf

from rps import artifacts, plots
from rps.architectures import ARCHITECTURES, build_model, make_optimizer
from rps.augmentation import make_augmenter
from rps.callbacks import StopOnEvent
from rps.config import TrainConfig
from rps.datasets import Dataset, LabelledImages, split_by_sequence
from rps.devices import choose_strategy, describe_device, precision_policy, xla_setting
from rps.errors import DatasetError, TrainingStopped
from rps.evaluation import Evaluation, evaluate_model
from rps.pipeline import DEFAULT_CACHE_BYTES, fits_in_cache, make_dataset


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


def _check_classes(dataset: Dataset, train: LabelledImages) -> None:
    counts = train.counts(len(dataset.class_names))
    empty = [name for name, count in zip(dataset.class_names, counts) if count == 0]
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
    if mirrored and min(len(train_images), len(validation_images)) < global_batch:
        raise DatasetError(
            f"Each split needs at least one full batch of {global_batch} images across "
            f"{strategy.num_replicas_in_sync} devices; use a smaller batch size."
        )
    train_data = make_dataset(
        train_images, config.image_size, global_batch, shuffle=True, augment=augment,
        seed=config.seed, drop_remainder=mirrored,
    )
    # When the training split streams from disk, the run is in low-memory mode: caching the
    # validation split would save a little decoding and cost up to the whole cache budget again.
    streaming = not fits_in_cache(len(train_images), config.image_size)
    validation_data = make_dataset(
        validation_images, config.image_size, global_batch, drop_remainder=mirrored,
        cache_budget=0 if streaming else DEFAULT_CACHE_BYTES,
    )

    stop_event = stop_event or threading.Event()
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

    validation = evaluate_model(model, validation_images, dataset.class_names, config.image_size)
    test = None
    if dataset.test is not None and len(dataset.test):
        test = evaluate_model(model, dataset.test, dataset.class_names, config.image_size)
    device = describe_device(config.devices)
    metadata = {
        "format": artifacts.FORMAT_VERSION,
        "class_names": list(dataset.class_names),
        "image_size": config.image_size,
        "architecture": config.architecture,
        "architecture_description": ARCHITECTURES[config.architecture].description,
        "parameters": int(model.count_params()),
        "config": config.to_dict(),
        "dataset": {
            "fingerprint": dataset.fingerprint(),
            "train": len(train_images),
            "validation": len(validation_images),
            "test": len(dataset.test) if dataset.test else 0,
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
