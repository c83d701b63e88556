"""Teach the model your own gestures: a new head on the shipped model's learned features.

A few photos per class (of any classes: rock, paper and scissors in your room, or the letters of
a sign alphabet) take the serving path once (hand found, aligned, its keypoints), exactly as
in ``rps.training``.  The base model is frozen and read at its last convolution block's pooled
maps (``features="pooled"``, for each member of an ensemble; ``"dense"`` reads the 64 features
before its ``probabilities`` layer instead: docs/teach.md measures both).  A new regularised head
(dropout, an L2 softmax layer) learns the user's classes on those features, with keypoint
jitter, for ``epochs`` epochs; the last share of each class in file-name order (capture order
in Teach) is held out and scored at the end (``rps.datasets.split_latest``: consecutive webcam
frames are near copies, so a random share would score copies of the fit frames); then, by
default, a fresh head is fit on every sample and saved (``refit``: the user's newest samples
are the ones most like what the camera shows next; docs/teach.md measures both).  This is
transfer learning with a frozen backbone, the recipe of Teachable Machine and MediaPipe Model
Maker, here on a skeleton CNN: a few dozen photos train in seconds on a CPU.

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
from rps.artifacts import load_bundle
from rps.callbacks import StopOnEvent
from rps.config import TrainConfig
from rps.datasets import Dataset, split_latest
from rps.devices import describe_device
from rps.errors import ConfigError, DatasetError, TrainingStopped
from rps.evaluation import Evaluation, PreparedSplit, evaluate_prepared
from rps.inference import ModelRunner
from rps.paths import ASSETS
from rps.preprocessing import Preprocessor
from rps.training import history_rows, prepare_for_fit, prepared_dataset, publish_run, training_record

# Fewer photos of a class than this cannot be split into a fit and a held-out part.
MIN_PER_CLASS = 3
DEFAULT_EPOCHS = 60
MAX_EPOCHS = 1000
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
    refitted: bool = False  # the saved model was fit again on every sample after ``held_out`` was scored


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


def build_finetuned(base: keras.Model, class_count: int, features: str = "pooled") -> keras.Model:
    """Frozen base features (``feature_extractor``), then a new dropout and L2-regularised
    softmax head."""
    extractor = feature_extractor(base, features)
    x = layers.Dropout(0.3, name="head_dropout")(extractor.output)
    probabilities = layers.Dense(class_count, activation="softmax", dtype="float32",
                                 kernel_regularizer=regularizers.l2(1e-3), name="probabilities")(x)
    return keras.Model(extractor.input, probabilities, name="finetuned")


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


def _base_name(folder: Path) -> str:
    """The base model as ``model.json`` names it: ``assets/model`` for the shipped one, else the
    folder's name; never a server's absolute path, which a downloaded model would carry."""
    folder = folder.resolve()
    return f"assets/{folder.name}" if folder.parent == ASSETS.resolve() else folder.name


def check_features(features: str) -> None:
    if features not in FEATURES:
        raise ConfigError(f"features must be one of {', '.join(FEATURES)}, got {features!r}.")


def _fit_head(base: keras.Model, class_count: int, features: str, split: PreparedSplit, labels: tuple[int, ...],
              config: TrainConfig, unfreeze_epochs: int, validation_data, stop_event: threading.Event, callbacks,
              verbose) -> tuple[keras.Model, list]:
    """A fresh head (seeded by ``config.seed``) fit on ``split``: the head's ``config.epochs``,
    then ``unfreeze_epochs`` with every layer trainable (which changes ``base``'s own weights).
    Returns the model and each stage's ``History``."""
    keras.utils.set_random_seed(config.seed)
    model = build_finetuned(base, class_count, features)
    steps = math.ceil(len(labels) / config.batch_size)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, steps * config.epochs)),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    train_data = prepared_dataset(split, labels, config.batch_size, ["keypoints"],
                                  shuffle=True, seed=config.seed, jitter_keypoints=True)
    callbacks = [StopOnEvent(stop_event), *callbacks]
    histories = [model.fit(train_data, validation_data=validation_data, epochs=config.epochs, verbose=verbose,
                           shuffle=False, callbacks=callbacks)]
    if unfreeze_epochs and not stop_event.is_set():
        for layer in model.layers:  # the members' feature models, frozen in the first stage
            layer.trainable = True
        model.compile(optimizer=keras.optimizers.Adam(UNFREEZE_LEARNING_RATE),
                      loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
        histories.append(model.fit(train_data, validation_data=validation_data, initial_epoch=config.epochs,
                                   epochs=config.epochs + unfreeze_epochs, verbose=verbose, shuffle=False,
                                   callbacks=callbacks))
    return model, histories


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
    skip_unreadable: bool = False,
    refit: bool = True,
) -> FinetuneResult:
    """Fine-tune a new head for ``dataset``'s classes on ``base_folder``'s frozen features and
    publish the run at ``out_dir``.

    ``dataset``: class folders of the user's photos (``rps.datasets.open_dataset``), at least
    ``MIN_PER_CLASS`` per class; the last ``HELD_OUT_FRACTION`` of each class in file-name
    order is held out and scored (``split_latest``).  ``seed``: initial weights and shuffling.
    ``unfreeze_epochs`` > 0 adds a second stage after the head's ``epochs``: every layer
    trains, at ``UNFREEZE_LEARNING_RATE``.  ``features``: which of the base's features the head
    reads (``feature_extractor``).  ``skip_unreadable``: leave out files that cannot be decoded
    (listed in ``model.json``) instead of raising ``DatasetError``.  ``refit``: once the
    held-out share is scored, fit a fresh head (same seed, same epochs) on every sample and
    publish that model; the curves, confusion and ``held_out`` stay those of the fit on the
    first share (docs/teach.md).  Callbacks with an ``on_refit(samples)`` method are told.
    Raises ``DatasetError`` for too few photos or a class without a hand found,
    ``ConfigError`` for a base model that does not read keypoints, ``TrainingStopped`` on
    ``stop_event``.
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    artifacts.check_output_folder(out_dir)
    check_per_class(dict(zip(dataset.class_names, dataset.train.counts(len(dataset.class_names)))))
    if not 1 <= epochs <= MAX_EPOCHS:
        raise ConfigError(f"Epochs must be a whole number from 1 to {MAX_EPOCHS}, got {epochs!r}.")
    check_features(features)
    if not 0 <= unfreeze_epochs <= 1000:
        raise ConfigError(f"Unfreeze epochs must be a whole number from 0 to 1000, got {unfreeze_epochs!r}.")
    bundle = load_bundle(base_folder)
    if bundle.input_mode != "hand":
        raise ConfigError("Fine-tuning needs a base model that reads hand keypoints, such as the shipped one.")
    keras.utils.set_random_seed(seed)
    fit_images, held_out_images = split_latest(dataset.train, HELD_OUT_FRACTION)
    config = TrainConfig(image_size=bundle.image_size, epochs=epochs, seed=seed, batch_size=16,
                         skip_unreadable=skip_unreadable)
    stop_event = stop_event or threading.Event()
    prepared = prepare_for_fit(dataset, fit_images, held_out_images, Preprocessor(bundle.image_size, "hand"),
                        config, stop_event, verbose, callbacks)

    fit_started = time.monotonic()
    validation_data = (prepared_dataset(prepared.fit_validation, prepared.fit_validation_labels, config.batch_size,
                                        ["keypoints"]) if prepared.fit_validation_labels else None)
    # An unfrozen stage tunes the base in place: the second fit starts again from the base as loaded.
    base_weights = bundle.model.get_weights() if unfreeze_epochs else None
    model, histories = _fit_head(bundle.model, len(dataset.class_names), features, prepared.fit_train,
                                 prepared.fit_train_labels, config, unfreeze_epochs, validation_data, stop_event,
                                 callbacks, verbose)
    fit_seconds = time.monotonic() - fit_started
    if stop_event.is_set():
        raise TrainingStopped("Training was stopped; no model was saved.")
    held_out = evaluate_prepared(ModelRunner(model, bundle.image_size), prepared.validation,
                                 prepared.validation_labels, dataset.class_names)
    refitted = refit and bool(prepared.fit_validation_labels)
    served_labels = prepared.fit_train_labels + (prepared.fit_validation_labels if refitted else ())
    if refitted:
        for listener in callbacks:
            if hasattr(listener, "on_refit"):
                listener.on_refit(len(served_labels))
        if base_weights is not None:
            bundle.model.set_weights(base_weights)
        # The caller's callbacks watch the first fit alone: its curves are the ones scored.
        model, _ = _fit_head(bundle.model, len(dataset.class_names), features,
                             prepared.fit_train.joined(prepared.fit_validation), served_labels, config,
                             unfreeze_epochs, None, stop_event, (), verbose)
    if stop_event.is_set():
        raise TrainingStopped("Training was stopped; no model was saved.")
    rows = [row for stage in histories for row in history_rows(stage)]
    served_fit_on = len(served_labels)
    metadata = {
        "format": artifacts.FORMAT_VERSION,
        "class_names": list(dataset.class_names),
        "image_size": bundle.image_size,
        "input": "hand",
        "architecture": "finetuned",
        "architecture_description": f"a new head on the frozen features of {Path(base_folder).name} "
                                    f"({bundle.metadata.get('architecture', '?')})",
        "parameters": int(model.count_params()),
        "config": {"base": _base_name(Path(base_folder)), "epochs": epochs, "unfreeze_epochs": unfreeze_epochs,
                   "features": features, "seed": seed, "refit": refitted,
                   "batch_size": config.batch_size, "held_out_fraction": HELD_OUT_FRACTION},
        "dataset": {"fingerprint": dataset.fingerprint(), "train": len(fit_images), "validation": len(held_out_images),
                    "test": 0,
                    "validation_split": f"the last {HELD_OUT_FRACTION:.0%} of each class in file-name order",
                    "hands_found": prepared.found, "skipped_unreadable": list(prepared.skipped),
                    # The photos the saved model was fit on (with a hand found): all of them when
                    # refit, else the fit share; the held-out figure is always the fit share's model's.
                    "served_model_fit_on": served_fit_on},
        "metrics": {"validation_accuracy": held_out.accuracy, "test_accuracy": None,
                    # What the validation figure scores when it is not this model (rps.reports shows it).
                    **({"note": f"validation accuracy: the same recipe fit on the first "
                                f"{1 - HELD_OUT_FRACTION:.0%} of each class; this model was then fit on all "
                                f"{served_fit_on} photos with a hand"} if refitted else {})},
        # The first fit's epochs and time (an epoch takes hundredths of a second: two digits); a
        # refit's total time beside them.
        "training": {**training_record(len(rows), fit_seconds, describe_device(), per_epoch_digits=2),
                     **({"seconds_with_refit": round(time.monotonic() - fit_started, 1)} if refitted else {})},
    }
    folder = publish_run(out_dir, model, metadata, rows, held_out, None, dataset.class_names,
                         validation_name="held-back samples")
    return FinetuneResult(folder, rows, held_out, time.monotonic() - started, metadata, refitted)

