"""Train an architecture on a dataset and write a complete, self-describing run folder.

The run folder holds ``model.keras`` and ``model.json`` (see ``rps.artifacts``), ``history.csv``,
``curves.png``, ``test_metrics.json`` and ``confusion.png``.  It appears only when everything
is written; a stop or a failure leaves nothing where a model is expected.

Every photo is decoded by ``rps.images.load_rgb`` (the decoder serving uses) and takes the
serving path (``rps.preprocessing``) once, before the first epoch, so a file that cannot be read
is named then (or skipped and listed in ``model.json`` with ``skip_unreadable``), not inside
``fit``.  With ``input="hand"`` (the default) the hand is found and aligned; photos without one
are left out of the fit and counted in ``model.json``, and the final validation and test
figures count them as wrong, as ``python -m rps evaluate`` does.  With ``input="image"`` the
whole photos are resized and kept in memory, or, when they do not fit ``DEFAULT_CACHE_BYTES``,
checked once and then streamed from disk through the same decoder (``rps.pipeline``).
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
from rps.architectures import ARCHITECTURES, average_ensemble, build_model, input_names, make_optimizer
from rps.augmentation import Augmenter, KeypointJitter, make_augmenter
from rps.callbacks import StopOnEvent
from rps.config import TrainConfig
from rps.datasets import SPLIT_FOLDER, Dataset, LabelledImages, split_for_validation
from rps.devices import choose_strategy, describe_device, precision_policy, xla_setting
from rps.errors import UNREADABLE_HINT, DatasetError, HandDetectorError, ImageError, ModelFileError, TrainingStopped
from rps.evaluation import Evaluation, PreparedSplit, evaluate_prepared, prepare_split, shown_name
from rps.images import load_rgb
from rps.inference import ModelRunner
from rps.pipeline import fits_in_cache, make_dataset
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
    metadata: dict  # what model.json holds


def choose_validation(dataset: Dataset, config: TrainConfig) -> tuple[LabelledImages, LabelledImages, str]:
    """(train, validation, how): the validation folder when there is one, else a split of the
    training photos (``rps.datasets.split_for_validation``); ``how`` says which.

    Never the test split: it must stay unseen until the final report.
    """
    if dataset.validation is not None and len(dataset.validation):
        return dataset.train, dataset.validation, SPLIT_FOLDER
    return split_for_validation(dataset.train, config.validation_fraction, config.seed)


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


def _saving_failed(out_dir: Path, step: str, error: OSError) -> str:
    return (f"Training finished, but saving {step} in {out_dir.parent} ({error.strerror or error}); "
            "nothing was saved. Free disk space there or make it writable, then train again.")


def training_record(epochs_run: int, seconds: float, device: str, per_epoch_digits: int = 1) -> dict:
    """``model.json``'s "training" entry: how long fitting took, where, and with which versions."""
    return {
        "epochs_run": epochs_run,
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(epochs_run, 1), per_epoch_digits),
        "device": device,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def _write_history(path: Path, history: list[dict]) -> None:
    columns = sorted({key for row in history for key in row}, key=lambda key: (key != "epoch", key))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def history_rows(history: keras.callbacks.History) -> list[dict]:
    """One row per epoch of a ``fit``: ``epoch`` (from 1, continuing after ``initial_epoch``)
    and each logged metric rounded to 6 digits."""
    return [{"epoch": epoch + 1, **{key: round(float(values[index]), 6) for key, values in history.history.items()}}
            for index, epoch in enumerate(history.epoch)]


def _accepted_only(split: PreparedSplit, labels: Sequence[int]) -> tuple[PreparedSplit, tuple[int, ...]]:
    keep = split.accepted
    return split.rows(keep), tuple(label for label, kept in zip(labels, keep) if kept)


def prepared_dataset(
    split: PreparedSplit,
    labels: Sequence[int],
    batch_size: int,
    inputs: Sequence[str],
    shuffle: bool = False,
    augment: Augmenter | None = None,
    seed: int | None = None,
    drop_remainder: bool = False,
    jitter_keypoints: bool | None = None,
) -> tf.data.Dataset:
    """Batches of prepared photos for ``model.fit``: (the model's ``inputs``, labels).

    Keypoints are jittered (``KeypointJitter``) when ``jitter_keypoints``, by default
    whenever ``augment`` is given.

    The photos are already decoded and prepared (``rps.evaluation.prepare_split``), so they
    sit in memory as uint8: 4,000 crops at 64 px are 50 MB.  ``inputs`` names what the model
    reads (``pixels``, ``keypoints``); pixels are augmented only when read.
    """
    dataset = tf.data.Dataset.from_tensor_slices(
        ((split.pixels, split.keypoints), np.asarray(labels, np.int32))
    )
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if jitter_keypoints is None:
        jitter_keypoints = augment is not None
    jitter = KeypointJitter(seed=seed) if jitter_keypoints else None

    # Plain Python branching on settings, nothing for AutoGraph to convert (it warned about
    # this closure on every training otherwise).
    @tf.autograph.experimental.do_not_convert
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
class PreparedData:
    """The training and validation photos, decoded and prepared once, before the first epoch.

    ``fit_*``: what the model fits on (hands found; readable photos).  ``validation`` and
    ``validation_labels``: every readable validation photo, declines included, for the final
    score.  ``found``: split -> [photos with a hand, readable photos] (``input="hand"``).
    ``skipped``: a sentence per unreadable file left out.
    """

    fit_train: PreparedSplit
    fit_train_labels: tuple[int, ...]
    fit_validation: PreparedSplit
    fit_validation_labels: tuple[int, ...]
    validation: PreparedSplit
    validation_labels: tuple[int, ...]
    found: dict[str, list[int]] | None
    skipped: tuple[str, ...]


def _readable_only(split: PreparedSplit, labels: Sequence[int]) -> tuple[PreparedSplit, tuple[int, ...]]:
    keep = split.readable
    return split.rows(keep), tuple(label for label, kept in zip(labels, keep) if kept)


def prepare_for_fit(dataset: Dataset, train_images: LabelledImages, validation_images: LabelledImages,
             preprocessor: Preprocessor, config: TrainConfig, stop_event: threading.Event, verbose,
             callbacks: Sequence[keras.callbacks.Callback] = ()) -> PreparedData:
    """Run the serving path over both splits once.

    Raises ``HandDetectorError`` without a landmarker (``input="hand"``), ``DatasetError`` for
    an unreadable file (unless ``config.skip_unreadable``) or a class with no usable photo,
    and ``TrainingStopped`` when ``stop_event`` is set meanwhile.
    """
    if config.input == "hand" and preprocessor.detector is None:
        raise HandDetectorError(f"{preprocessor.warning} Training with input 'hand' needs it.")
    prepared = {}
    for name, images in (("train", train_images), ("validation", validation_images)):
        split = prepare_split(images.paths, preprocessor,
                              _progress(stop_event, name, verbose, callbacks, config.input),
                              skip_unreadable=config.skip_unreadable, root=dataset.root)
        prepared[name] = _readable_only(split, images.labels)
    train, train_labels = prepared["train"]
    validation, validation_labels = prepared["validation"]
    fit_train, fit_train_labels = _accepted_only(train, train_labels)
    _check_hands_found(dataset, fit_train_labels, len(train_labels), config.input)
    fit_validation, fit_validation_labels = _accepted_only(validation, validation_labels)
    found = None
    if config.input == "hand":
        found = {"train": [len(fit_train_labels), len(train_labels)],
                 "validation": [len(fit_validation_labels), len(validation_labels)]}
    return PreparedData(fit_train, fit_train_labels, fit_validation, fit_validation_labels,
                        validation, validation_labels, found, train.skipped + validation.skipped)


def _readable_files(dataset: Dataset, images: LabelledImages, config: TrainConfig,
                    stop_event: threading.Event, verbose, name: str,
                    callbacks: Sequence[keras.callbacks.Callback] = ()) -> tuple[LabelledImages, list[str]]:
    """Decode every file once, keeping nothing: the check before streaming from disk.

    Raises ``DatasetError`` naming the first unreadable file, or with ``skip_unreadable``
    returns the readable ones and a sentence per file left out.
    """
    report = _progress(stop_event, name, verbose, callbacks, config.input)
    kept, skipped = [], []
    for index, path in enumerate(images.paths):
        try:
            load_rgb(path)
        except ImageError as error:
            problem = f"{shown_name(path, dataset.root)}: {error}"
            if not config.skip_unreadable:
                raise DatasetError(f"{problem} {UNREADABLE_HINT}") from None
            skipped.append(problem)
        else:
            kept.append(index)
        report(index + 1, len(images))
    return LabelledImages(tuple(images.paths[i] for i in kept), tuple(images.labels[i] for i in kept)), skipped


def _progress(stop_event: threading.Event, name: str, verbose: int | str,
              callbacks: Sequence[keras.callbacks.Callback] = (), input_mode: str = "hand"):
    """Report progress now and then (printed, and to callbacks with ``on_preparation``), and
    stop between photos when asked to."""
    listeners = [callback for callback in callbacks if hasattr(callback, "on_preparation")]
    doing = "Finding hands in" if input_mode == "hand" else "Reading"

    def report(done: int, total: int) -> None:
        if stop_event.is_set():
            raise TrainingStopped("Training was stopped; no model was saved.")
        if done == total or done % 25 == 0:
            for listener in listeners:
                listener.on_preparation(name, done, total)
        if verbose and (done == total or done % 500 == 0):
            print(f"{doing} the {name} split: {done}/{total}", flush=True)

    return report


def _check_hands_found(dataset: Dataset, labels: Sequence[int], total: int, input_mode: str) -> None:
    missing = _empty_classes(dataset.class_names, labels)
    if missing and input_mode != "hand":
        raise DatasetError(f"No training photo of class {', '.join(missing)} could be read.")
    if missing:
        raise DatasetError(
            f"No hand was found in any training photo of class {', '.join(missing)} "
            f"({len(labels)} of {total} photos had a hand). Use photos that show a hand; for gestures "
            "that are not hands, train a whole-photo model (`rps train --input image`, or input 'image' "
            "in the Train tab)."
        )


def _fit_one(config: TrainConfig, seed: int, class_count: int, strategy, steps_per_epoch: int,
             global_batch: int, mirrored: bool, prepared: "PreparedData | None",
             train_images: LabelledImages, validation_images: LabelledImages,
             stop_event: threading.Event, callbacks: Sequence[keras.callbacks.Callback],
             verbose) -> keras.Model:
    """Build, compile and fit one model from ``seed``; raises ``TrainingStopped`` on Stop."""
    keras.utils.set_random_seed(seed)
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
    augment = make_augmenter(config.augmentation, seed)
    if prepared is not None:
        inputs = input_names(model)
        train_data = prepared_dataset(prepared.fit_train, prepared.fit_train_labels, global_batch, inputs,
                                      shuffle=True, augment=augment, seed=seed, drop_remainder=mirrored)
        validation_data = (prepared_dataset(prepared.fit_validation, prepared.fit_validation_labels,
                                            global_batch, inputs, drop_remainder=mirrored)
                           if prepared.fit_validation_labels else None)
    else:
        train_data = make_dataset(
            train_images, config.image_size, global_batch, shuffle=True, augment=augment,
            seed=seed, drop_remainder=mirrored,
        )
        # Streaming is the low-memory mode: caching the validation split would cost the
        # cache budget again.
        validation_data = make_dataset(validation_images, config.image_size, global_batch,
                                       drop_remainder=mirrored, cache_budget=0)
    fit_callbacks: list[keras.callbacks.Callback] = [StopOnEvent(stop_event), *callbacks]
    if config.patience:
        fit_callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            )
        )
    model.fit(
        train_data,
        validation_data=validation_data,
        epochs=config.epochs,
        callbacks=fit_callbacks,
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline already shuffles
    )
    # Free the pipelines' in-memory caches before the next member: they can hold gigabytes.
    del train_data, validation_data
    if stop_event.is_set():
        raise TrainingStopped("Training was stopped; no model was saved.")
    return model


def publish_run(out_dir: Path, model: keras.Model, metadata: dict, rows: list[dict], validation: Evaluation,
             test: Evaluation | None, class_names: Sequence[str], validation_name: str = "validation set") -> Path:
    """Write the run folder in a staging folder and rename it into place when complete.

    The confusion picture shows ``test`` when given, else ``validation``, titled
    ``validation_name``.

    Raises ``ModelFileError`` naming the step when the disk is full or the folder unwritable;
    nothing half-written stays.
    """
    try:
        staging = artifacts.staging_folder(out_dir)
    except OSError as error:
        raise ModelFileError(_saving_failed(out_dir, "could not create the run folder", error)) from None
    try:
        artifacts.save_for_inference(model, staging / artifacts.MODEL_FILE)
        artifacts.write_json(staging / artifacts.METADATA_FILE, metadata)
        _write_history(staging / "history.csv", rows)
        plots.save_figure(plots.history_figure(rows), staging / "curves.png")
        report = {"validation": validation.to_dict(), "test": test.to_dict() if test else None}
        artifacts.write_json(staging / "test_metrics.json", report)
        shown = test or validation
        title = "test set" if test else validation_name
        plots.save_figure(plots.confusion_figure(shown.confusion, list(class_names), title),
                          staging / "confusion.png")
        return artifacts.publish(staging, out_dir)
    except OSError as error:  # a full disk or an unwritable folder: nothing half-written stays
        artifacts.discard(staging)
        raise ModelFileError(_saving_failed(out_dir, "could not write the run", error)) from None
    except BaseException:
        artifacts.discard(staging)
        raise


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
    train_images, validation_images, split_used = choose_validation(dataset, config)
    _check_classes(dataset, train_images)
    if verbose:
        print(f"Validation data: {split_used} ({len(validation_images)} photos).", flush=True)
    class_count = len(dataset.class_names)

    strategy = choose_strategy(config.devices)
    # Under a distribution strategy the global batch is split across the replicas.
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    # Mirrored replicas need equal shares of every batch; a ragged last batch would not split.
    mirrored = strategy.num_replicas_in_sync > 1
    preprocessor = Preprocessor(config.image_size, config.input)
    stop_event = stop_event or threading.Event()
    # Photos are decoded and prepared before the model is built: an unreadable file is named
    # now, not inside fit.  Whole photos too many for memory are checked, then streamed.
    in_memory = config.input == "hand" or fits_in_cache(
        len(train_images) + len(validation_images), config.image_size)
    prepared = None
    skipped: list[str] = []
    if in_memory:
        prepared = prepare_for_fit(dataset, train_images, validation_images, preprocessor, config, stop_event,
                            verbose, callbacks)
        skipped = list(prepared.skipped)
        fit_count, validation_count = len(prepared.fit_train_labels), len(prepared.fit_validation_labels)
    else:
        train_images, skipped_train = _readable_files(dataset, train_images, config, stop_event, verbose,
                                                      "train", callbacks)
        validation_images, skipped_validation = _readable_files(dataset, validation_images, config,
                                                                stop_event, verbose, "validation", callbacks)
        skipped = skipped_train + skipped_validation
        _check_hands_found(dataset, train_images.labels, len(train_images), config.input)
        fit_count, validation_count = len(train_images), len(validation_images)
    _check_batches(mirrored, global_batch, strategy, fit_count, validation_count)

    steps_per_epoch = math.ceil(fit_count / global_batch)
    started = time.monotonic()
    members, rows = [], []
    for member in range(config.members):
        # Each member of an ensemble starts from its own seed: weights, data order, augmentation.
        seed = config.seed + member
        for callback in callbacks:
            if hasattr(callback, "on_member"):
                callback.on_member(member, config.members)
        model = _fit_one(config, seed, class_count, strategy, steps_per_epoch, global_batch, mirrored,
                         prepared, train_images, validation_images, stop_event, callbacks, verbose)
        members.append(model)
        rows.extend({**row, "epoch": member * config.epochs + row["epoch"], "member": member + 1}
                    if config.members > 1 else row for row in history_rows(model.history))
    seconds = time.monotonic() - started
    model = average_ensemble(members)

    # The final figures go through the serving path: every photo of the split, declines
    # counted as wrong.
    runner = ModelRunner(model, config.image_size)
    if prepared is not None:
        validation_split, validation_labels = prepared.validation, prepared.validation_labels
    else:
        validation_split = prepare_split(validation_images.paths, preprocessor, root=dataset.root)
        validation_labels = validation_images.labels
    validation = evaluate_prepared(runner, validation_split, validation_labels, dataset.class_names)
    test = None
    if dataset.test is not None and len(dataset.test):
        prepared_test = prepare_split(dataset.test.paths, preprocessor,
                                      _progress(stop_event, "test", verbose, input_mode=config.input),
                                      skip_unreadable=config.skip_unreadable, root=dataset.root)
        skipped.extend(prepared_test.skipped)
        test_split, test_labels = _readable_only(prepared_test, dataset.test.labels)
        test = evaluate_prepared(runner, test_split, test_labels, dataset.class_names)
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
            "validation_split": split_used,
            "hands_found": prepared.found if prepared is not None else None,
            "skipped_unreadable": skipped,
        },
        "metrics": {
            "validation_accuracy": validation.accuracy,
            "test_accuracy": test.accuracy if test else None,
        },
        "training": training_record(len(rows), seconds, device),
    }

    folder = publish_run(out_dir, model, metadata, rows, validation, test, dataset.class_names)
    return TrainResult(
        folder, rows, test, validation, seconds, seconds / max(len(rows), 1), device, metadata
    )
