"""The model registry: the study's three CNNs and the compact one that ships.

Every builder takes ``(image_size, class_count)`` and returns an uncompiled model that accepts
raw 0-255 RGB pixels (rescaling is the first layer), so inference needs no preprocessing beyond
a resize.  ``ARCHITECTURES[name].learning_rate`` is the study's optimiser setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
from keras import layers, regularizers


@dataclass(frozen=True)
class Architecture:
    build: Callable[[int, int], keras.Model]
    optimizer: str  # "adam" or "rmsprop", as the study used
    learning_rate: float
    description: str
    # Save an exponential moving average of the weights rather than the last step's: it
    # steadies the saved model against the noise of the final steps.
    weight_averaging: bool = False


def _inputs(image_size: int) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input(shape=(image_size, image_size, 3), name="pixels")
    return inputs, layers.Rescaling(1.0 / 255, name="rescale")(inputs)


def _classifier_head(x, class_count: int):
    # float32 output keeps softmax stable when the rest of the model runs in mixed precision.
    return layers.Dense(class_count, activation="softmax", dtype="float32", name="probabilities")(x)


def build_baseline(image_size: int, class_count: int) -> keras.Model:
    inputs, x = _inputs(image_size)
    for filters in (16, 32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, _classifier_head(x, class_count), name="baseline")


def build_improved(image_size: int, class_count: int) -> keras.Model:
    inputs, x = _inputs(image_size)
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="valid", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, _classifier_head(x, class_count), name="improved")


def build_regularised(image_size: int, class_count: int) -> keras.Model:
    inputs, x = _inputs(image_size)
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="valid", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", kernel_regularizer=regularizers.l2(0.01))(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, _classifier_head(x, class_count), name="regularised")


def _convolution_block(x, filters: int):
    """3x3 convolution, batch normalisation, ReLU: one block of the compact model."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    # Momentum 0.9, not Keras' 0.99: a short CPU run has only ~1000 steps, and at 0.99 the
    # moving variance still remembers its initial 1.0, which collapses inference-mode outputs.
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation("relu")(x)


def build_compact(image_size: int, class_count: int) -> keras.Model:
    """The regularised family made small and fast: BN blocks, global pooling, L2, dropout.

    Global pooling replaces Flatten -> Dense, which held 95% of the study's weights; the
    result is a few megabytes and indifferent to where the hand sits in the frame.  It pools by
    maximum, not average: an average adds up every backdrop pixel's features, in proportion
    to how much backdrop the frame shows, so a plain wall colour swayed the answer
    (``bench/backdrops.py``; the README compares both over four seeds).

    A fifth convolution, on the last 4x4 map, lets each pooled feature see the whole 64 px
    frame, so the model can read an open hand's outline as one shape, not only its finger
    gaps.  It costs 16% more multiply-adds and 2.4 times the weights (about 4 MB), and it beat
    the four-block model on every figure over eight seeds, real photos included (README).
    """
    inputs, x = _inputs(image_size)
    for filters in (32, 64, 128, 256):
        x = layers.MaxPooling2D(2)(_convolution_block(x, filters))
    x = layers.GlobalMaxPooling2D()(_convolution_block(x, 256))
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(128, activation="relu", kernel_regularizer=regularizers.l2(1e-3))(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, _classifier_head(x, class_count), name="compact")


ARCHITECTURES: dict[str, Architecture] = {
    "baseline": Architecture(build_baseline, "adam", 1e-3, "study: 3 conv, Flatten, Dense 64"),
    "improved": Architecture(build_improved, "rmsprop", 1e-4, "study: 3 conv, Dense 128, Dropout"),
    "regularised": Architecture(
        build_regularised, "rmsprop", 1e-4, "study: improved + BatchNorm, L2(0.01), Dropout"
    ),
    "compact": Architecture(
        build_compact, "adam", 1e-3,
        "shipped: 5 conv with BatchNorm, global pooling, L2, Dropout, weight averaging",
        weight_averaging=True,
    ),
}


def build_model(name: str, image_size: int, class_count: int) -> keras.Model:
    """Build architecture ``name``; raises ``ValueError`` naming the choices if unknown."""
    if name not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}.")
    if class_count < 2:
        raise ValueError(f"A classifier needs at least two classes, got {class_count}.")
    return ARCHITECTURES[name].build(image_size, class_count)


def make_optimizer(
    name: str,
    learning_rate: float | None = None,
    decay_steps: int | None = None,
    total_steps: int | None = None,
) -> keras.optimizers.Optimizer:
    """The architecture's optimiser; with ``decay_steps``, its rate follows a cosine to zero.

    With ``weight_averaging``, Keras keeps an exponential moving average of the weights and
    ``fit`` ends by writing it into the model, so the saved model is the average.
    ``total_steps`` sizes its window (see ``averaging_momentum``).  When EarlyStopping
    restores its best epoch, it does so after this, and that epoch's own weights win.
    """
    architecture = ARCHITECTURES[name]
    rate = learning_rate if learning_rate is not None else architecture.learning_rate
    if decay_steps:
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps)
    averaging = {}
    if architecture.weight_averaging:
        averaging = {"use_ema": True, "ema_momentum": averaging_momentum(total_steps)}
    if architecture.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=rate, **averaging)
    return keras.optimizers.Adam(learning_rate=rate, **averaging)


def averaging_momentum(total_steps: int | None) -> float:
    """EMA momentum that averages over the last ~4% of the run's steps, at most 0.99.

    0.99 (Keras' default; the shipped run's 2,528 steps give the same) averages about the
    last 100 steps.  A short run in the app, a few dozen steps, would then save weights that
    still remember their random start, so shorter runs get a shorter window.
    """
    if not total_steps:
        return 0.99
    return min(0.99, max(0.0, 1.0 - 25.0 / total_steps))
