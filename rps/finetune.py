"""Teach the model your own gestures: a new head on the shipped model's learned features.

A few photos per class (of any classes: rock, paper and scissors in your room, or the letters of
a sign alphabet) take the serving path once (hand found, aligned, its keypoints), exactly as
in ``rps.training``.  The base model is frozen and read at its last convolution block's pooled
maps (``features="pooled"``, for each member of an ensemble; ``"dense"`` reads the 64 features
before its ``probabilities`` layer instead: docs/teach.md measures both).  A new regularised head
(dropout, an L2 softmax layer) learns the user's classes on those features, with keypoint
jitter, for ``epochs`` epochs; a stratified share of each class is held out and scored at the
end.  This is transfer learning with a frozen backbone, the recipe of Teachable Machine and
MediaPipe Model Maker, here on a skeleton CNN: a few dozen photos train in seconds on a CPU.

The result is an ordinary run folder (``model.keras``, ``model.json``, curves, confusion) that
``Predictor``, ``python -m rps`` and the app serve like any other.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import keras
from keras import layers, regularizers

from rps import artifacts
from rps.architectures import convolution_block
from rps.artifacts import load_bundle
from rps.augmentation import personal_augmenter
from rps.callbacks import StopOnEvent
from rps.config import TrainConfig
from rps.datasets import Dataset, split_stratified
from rps.devices import describe_device
from rps.errors import ConfigError, DatasetError, TrainingStopped
from rps.evaluation import Evaluation, evaluate_prepared
from rps.inference import ModelRunner
from rps.preprocessing import Preprocessor
from rps.training import history_rows, prepare_for_fit, prepared_dataset, publish_run, training_record

# Fewer photos of a class than this cannot be split into a fit and a held-out part.
MIN_PER_CLASS = 3
DEFAULT_EPOCHS = 60
HELD_OUT_FRACTION = 0.2
# The second stage (``unfreeze_epochs``): the whole model at a learning rate 30 times below the
# head's, the fine-tuning step of Keras' transfer-learning guide; batch normalisation stays in
# inference mode (the base is called with training=False), as that guide advises.
UNFREEZE_LEARNING_RATE = 1e-4


@dataclass(frozen=True)
class FinetuneResult:
    folder: Path
    history: list[dict]
    held_out: Evaluation
    seconds: float  # preparing, fitting, scoring and saving
    metadata: dict


FEATURES = ("dense", "pooled")


def _pooled_layer(member: keras.Model) -> keras.layers.Layer:
    pools = [layer for layer in member.layers if isinstance(layer, keras.layers.GlobalMaxPooling2D)]
    if not pools:
        raise ConfigError(f"The base model {member.name} has no pooled convolution features.")
    return pools[-1]


def feature_extractor(base: keras.Model, features: str = "dense") -> keras.Model:
    """The base model up to its classifier, frozen: keypoints (B, 21, 3) -> features (B, F).

    ``features``: ``"dense"``, the input of the ``probabilities`` layer (the features the base
    learned for its own classes), or ``"pooled"``, the last convolution block's pooled maps
    (earlier, more general features).  For an ensemble (``rps.architectures.average_ensemble``)
    the members' features are concatenated.  Raises ``ConfigError`` for a model that does not
    read keypoints or has no such layer.
    """
    check_features(features)
    if [tensor.name for tensor in base.inputs] != ["keypoints"]:
        raise ConfigError("Fine-tuning needs a base model that reads hand keypoints, such as the shipped one.")
    members = [layer for layer in base.layers if isinstance(layer, keras.Model)] or [base]
    keypoints = keras.Input(shape=(21, 3), name="keypoints")
    parts = []
    for member in members:
        try:
            head = member.get_layer("probabilities")
        except ValueError:
            raise ConfigError(f"The base model {base.name} has no 'probabilities' layer to replace.") from None
        output = head.input if features == "dense" else _pooled_layer(member).output
        body = keras.Model(member.input, output, name=f"{member.name}_features")
        body.trainable = False
        parts.append(body(keypoints, training=False))
    joined = parts[0] if len(parts) == 1 else layers.Concatenate(name="features")(parts)
    return keras.Model(keypoints, joined, name="frozen_features")


def _softmax_head(x, class_count: int, name: str):
    x = layers.Dropout(0.3, name=f"{name}_dropout")(x)
    return layers.Dense(class_count, activation="softmax", dtype="float32",
                        kernel_regularizer=regularizers.l2(1e-3), name=name)(x)


def pixel_branch(image_size: int) -> keras.Model:
    """A small CNN on the aligned hand crop, trained from scratch on the user's samples: pixels
    uint8-range float32 (B, size, size, 3) -> pooled features (B, 128).

    Four blocks of the compact family (``rps.architectures``), 16 to 128 filters, pooled by
    maximum.  Trained on the shipped data, such a branch carried the training rooms' look into
    rooms it had never seen (docs/hands-first.md); trained on a person's own samples, the room
    it learns is the room it serves (docs/teach.md measures it).
    """
    pixels = keras.Input(shape=(image_size, image_size, 3), name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(pixels)
    for width in (16, 32, 64):
        x = layers.MaxPooling2D(2)(convolution_block(x, width))
    x = layers.GlobalMaxPooling2D()(convolution_block(x, 128))
    return keras.Model(pixels, x, name="pixel_features")


def build_finetuned(base: keras.Model, class_count: int, features: str = "pooled",
                    pixels: bool = False, image_size: int = 64) -> keras.Model:
    """Frozen base features (``feature_extractor``), then a new dropout and L2-regularised
    softmax head: keypoints (B, 21, 3) -> probabilities (B, classes).

    With ``pixels``, the model also reads the aligned crop (``pixels``, (B, image_size,
    image_size, 3) in 0..255) through ``pixel_branch``, which has its own softmax head; the
    answer is the mean of the two heads' probabilities (``probabilities``), and
    ``training_view`` trains each head on its own loss.
    """
    extractor = feature_extractor(base, features)
    if not pixels:
        return keras.Model(extractor.input, _softmax_head(extractor.output, class_count, "probabilities"),
                           name="finetuned")
    crop = keras.Input(shape=(image_size, image_size, 3), name="pixels")
    keypoint_probabilities = _softmax_head(extractor.output, class_count, "keypoint_probabilities")
    pixel_probabilities = _softmax_head(pixel_branch(image_size)(crop), class_count, "pixel_probabilities")
    probabilities = layers.Average(name="probabilities")([keypoint_probabilities, pixel_probabilities])
    return keras.Model([extractor.input, crop], probabilities, name="finetuned_with_pixels")


def reads_pixels(model: keras.Model) -> bool:
    return any(layer.name == "pixel_probabilities" for layer in model.layers)


def training_view(model: keras.Model) -> keras.Model:
    """What ``model.fit`` trains: the model itself, or, for a model with a pixel branch, the
    two heads' probabilities stacked (B, 2, classes), for ``heads_loss`` and
    ``heads_accuracy``.  It shares every weight with ``model``."""
    if not reads_pixels(model):
        return model
    heads = [model.get_layer(name).output for name in ("keypoint_probabilities", "pixel_probabilities")]
    return keras.Model(model.inputs, keras.ops.stack(heads, axis=1), name="finetuned_heads")


def heads_loss(labels, stacked):
    """Each head's cross-entropy, averaged: labels int (B,), stacked probabilities (B, 2, C)."""
    return keras.ops.mean(keras.ops.stack([
        keras.losses.sparse_categorical_crossentropy(labels, stacked[:, head]) for head in range(2)
    ]), axis=0)


def heads_accuracy(labels, stacked):
    """The accuracy of the served answer, the mean of the heads' probabilities."""
    return keras.metrics.sparse_categorical_accuracy(labels, keras.ops.mean(stacked, axis=1))


def check_per_class(counts: Mapping[str, int], noun: str = "photos", advice: str | None = None) -> None:
    """``DatasetError`` naming the classes with fewer than ``MIN_PER_CLASS`` items (``noun``),
    which cannot be split into a fit and a held-out part; ``advice`` ends the sentence."""
    few = [name for name, count in counts.items() if count < MIN_PER_CLASS]
    if few:
        advice = advice or f"Add {noun} of {'it' if len(few) == 1 else 'them'}."
        raise DatasetError(
            f"Each class needs at least {MIN_PER_CLASS} {noun} to train on and to hold some back for "
            f"checking; {', '.join(few)} {'has' if len(few) == 1 else 'have'} fewer. {advice}"
        )


def check_features(features: str) -> None:
    if features not in FEATURES:
        raise ConfigError(f"features must be one of {', '.join(FEATURES)}, got {features!r}.")


def finetune(
    dataset: Dataset,
    base_folder: Path | str,
    out_dir: Path | str,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 42,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    stop_event: threading.Event | None = None,
    verbose: int | str = 0,
    unfreeze_epochs: int = 0,
    features: str = "pooled",
    pixels: bool = False,
) -> FinetuneResult:
    """Fine-tune a new head for ``dataset``'s classes on ``base_folder``'s frozen features and
    publish the run at ``out_dir``.

    ``dataset``: class folders of the user's photos (``rps.datasets.open_dataset``), at least
    ``MIN_PER_CLASS`` per class; ``HELD_OUT_FRACTION`` of each class is held out and scored.
    ``unfreeze_epochs`` > 0 adds a second stage after the head's ``epochs``: every layer
    trains, at ``UNFREEZE_LEARNING_RATE``.  ``features``: which of the base's features the head
    reads (``feature_extractor``).  ``pixels``: also learn from the aligned crop's pixels
    (``build_finetuned``), with ``personal_augmenter``.
    Raises ``DatasetError`` for too few photos or a class without a hand found,
    ``ConfigError`` for a base model that does not read keypoints, ``TrainingStopped`` on
    ``stop_event``.
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    artifacts.check_output_folder(out_dir)
    check_per_class(dict(zip(dataset.class_names, dataset.train.counts(len(dataset.class_names)))))
    if not 1 <= epochs <= 1000:
        raise ConfigError(f"epochs must be a whole number from 1 to 1000, got {epochs!r}.")
    check_features(features)
    if not 0 <= unfreeze_epochs <= 1000:
        raise ConfigError(f"unfreeze epochs must be a whole number from 0 to 1000, got {unfreeze_epochs!r}.")
    bundle = load_bundle(base_folder)
    if bundle.input_mode != "hand":
        raise ConfigError("Fine-tuning needs a base model that reads hand keypoints, such as the shipped one.")
    keras.utils.set_random_seed(seed)
    fit_images, held_out_images = split_stratified(dataset.train, HELD_OUT_FRACTION, seed)
    config = TrainConfig(image_size=bundle.image_size, epochs=epochs, seed=seed, batch_size=16)
    stop_event = stop_event or threading.Event()
    prepared = prepare_for_fit(dataset, fit_images, held_out_images, Preprocessor(bundle.image_size, "hand"),
                        config, stop_event, verbose, callbacks)

    model = build_finetuned(bundle.model, len(dataset.class_names), features, pixels, bundle.image_size)
    trained = training_view(model)
    if pixels:
        loss, accuracy = heads_loss, keras.metrics.MeanMetricWrapper(heads_accuracy, name="accuracy")
    else:
        loss, accuracy = keras.losses.SparseCategoricalCrossentropy(), "accuracy"
    steps = math.ceil(len(prepared.fit_train_labels) / config.batch_size)
    trained.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, steps * epochs)),
                    loss=loss, metrics=[accuracy])
    inputs = ["keypoints", "pixels"] if pixels else ["keypoints"]
    train_data = prepared_dataset(prepared.fit_train, prepared.fit_train_labels, config.batch_size, inputs,
                                  shuffle=True, seed=seed, jitter_keypoints=True,
                                  augment=personal_augmenter(seed) if pixels else None)
    validation_data = (prepared_dataset(prepared.fit_validation, prepared.fit_validation_labels, config.batch_size,
                                        inputs) if prepared.fit_validation_labels else None)
    fit_started = time.monotonic()
    history = trained.fit(train_data, validation_data=validation_data, epochs=epochs, verbose=verbose, shuffle=False,
                        callbacks=[StopOnEvent(stop_event), *callbacks])
    histories = [history]
    if unfreeze_epochs and not stop_event.is_set():
        for layer in model.layers:  # the members' feature models, frozen in the first stage
            layer.trainable = True
        trained.compile(optimizer=keras.optimizers.Adam(UNFREEZE_LEARNING_RATE), loss=loss, metrics=[accuracy])
        histories.append(trained.fit(train_data, validation_data=validation_data, initial_epoch=epochs,
                                   epochs=epochs + unfreeze_epochs, verbose=verbose, shuffle=False,
                                   callbacks=[StopOnEvent(stop_event), *callbacks]))
    fit_seconds = time.monotonic() - fit_started
    if stop_event.is_set():
        raise TrainingStopped("Training was stopped; no model was saved.")
    rows = [row for stage in histories for row in history_rows(stage)]
    held_out = evaluate_prepared(ModelRunner(model, bundle.image_size), prepared.validation,
                                 prepared.validation_labels, dataset.class_names)
    metadata = {
        "format": artifacts.FORMAT_VERSION,
        "class_names": list(dataset.class_names),
        "image_size": bundle.image_size,
        "input": "hand",
        "architecture": "finetuned",
        "architecture_description": f"a new head on the frozen features of {Path(base_folder).name} "
                                    f"({bundle.metadata.get('architecture', '?')})"
                                    + (", and a CNN on the crop's pixels" if pixels else ""),
        "parameters": int(model.count_params()),
        "config": {"base": str(base_folder), "epochs": epochs, "unfreeze_epochs": unfreeze_epochs,
                   "features": features, "pixels": pixels, "seed": seed,
                   "batch_size": config.batch_size, "held_out_fraction": HELD_OUT_FRACTION},
        "dataset": {"fingerprint": dataset.fingerprint(), "train": len(fit_images), "validation": len(held_out_images),
                    "test": 0, "validation_split": f"{HELD_OUT_FRACTION:.0%} of each class held out",
                    "hands_found": prepared.found, "skipped_unreadable": list(prepared.skipped)},
        "metrics": {"validation_accuracy": held_out.accuracy, "test_accuracy": None},
        # Fine-tuning epochs take hundredths of a second: two digits.
        "training": training_record(len(rows), fit_seconds, describe_device(), per_epoch_digits=2),
    }
    folder = publish_run(out_dir, model, metadata, rows, held_out, None, dataset.class_names)
    return FinetuneResult(folder, rows, held_out, time.monotonic() - started, metadata)

