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

from rps.hands import FINGER_CHAINS, KNUCKLE_LINE


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
    (docs/whole-photo-model.md, "Max pooling instead of average pooling").

    A fifth convolution, on the last 4x4 map, lets each pooled feature see the whole 64 px
    frame, so the model can read an open hand's outline as one shape, not only its finger
    gaps.  It costs 16% more multiply-adds and 2.4 times the weights (about 4 MB), and it beat
    the four-block model on every figure over eight seeds, real photos included (docs/whole-photo-model.md).
    """
    inputs, x = _inputs(image_size)
    x = _pooled_features(x, (32, 64, 128, 256, 256), dense_units=128)
    return keras.Model(inputs, _classifier_head(x, class_count), name="compact")


def _pooled_features(x, filters: tuple[int, ...], dense_units: int):
    """The compact family's body: blocks with 2x2 max pooling, the last block pooled globally
    by maximum, then dropout, an L2-regularised dense layer, batch normalisation, dropout."""
    for width in filters[:-1]:
        x = layers.MaxPooling2D(2)(_convolution_block(x, width))
    x = layers.GlobalMaxPooling2D()(_convolution_block(x, filters[-1]))
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(dense_units, activation="relu", kernel_regularizer=regularizers.l2(1e-3))(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Dropout(0.3)(x)


# The heat maps' channels: one per finger chain (``rps.hands.FINGER_CHAINS``), so fingers stay
# apart, and one for the palm's edges.
PALM_EDGES = KNUCKLE_LINE + ((0, 17),)


def _bone_channels() -> list[list[tuple[int, int]]]:
    fingers = [[(chain[i], chain[i + 1]) for i in range(len(chain) - 1)] for chain in FINGER_CHAINS]
    return fingers + [list(PALM_EDGES)]


@keras.saving.register_keras_serializable(package="rps")
class KeypointHeatmaps(layers.Layer):
    """Render aligned hand keypoints (B, 21, 3) as bone heat maps (B, size, size, 6).

    The skeleton-as-image input of pose-based recognition (PoseC3D: Duan et al., "Revisiting
    Skeleton-based Action Recognition", CVPR 2022), for one frame: each pixel holds a Gaussian
    of its distance to the nearest bone of a finger, one channel per finger and one for the
    palm.  A CNN then reads the hand's shape as it reads a picture, and no pixel of the room
    reaches it.  Keypoints are in the crop's frame of ``rps.hands.align_hand`` (x, y within
    about -0.5..0.5); the maps cover ``extent`` around the centre.  The keypoints' third
    coordinate, MediaPipe's relative depth, is not drawn: estimated from one frame, it made
    an open hand tilted back look like a fist's fingers curled towards the camera
    (docs/hands-first.md).
    """

    def __init__(self, size: int = 32, extent: float = 1.2, sigma: float = 0.035, **kwargs):
        super().__init__(**kwargs)
        self.size, self.extent, self.sigma = size, extent, sigma
        channels = _bone_channels()
        self._starts = [[a for a, _ in bones] for bones in channels]
        self._ends = [[b for _, b in bones] for bones in channels]

    def call(self, keypoints):
        import tensorflow as tf

        points = tf.cast(keypoints, tf.float32)[..., :2]
        axis = (tf.range(self.size, dtype=tf.float32) + 0.5) / self.size * self.extent - self.extent / 2
        grid_y, grid_x = tf.meshgrid(axis, axis, indexing="ij")
        grid = tf.stack([grid_x, grid_y], axis=-1)[None, :, :, None, :]  # (1, S, S, 1, 2)
        channels = []
        for starts, ends in zip(self._starts, self._ends):
            a = tf.gather(points, starts, axis=1)[:, None, None]  # (B, 1, 1, bones, 2)
            bone = tf.gather(points, ends, axis=1)[:, None, None] - a
            length = tf.reduce_sum(bone * bone, axis=-1) + 1e-6
            along = tf.clip_by_value(tf.reduce_sum((grid - a) * bone, axis=-1) / length, 0.0, 1.0)
            distance = tf.reduce_sum((grid - a - along[..., None] * bone) ** 2, axis=-1)
            channels.append(tf.reduce_max(tf.exp(-distance / (2 * self.sigma ** 2)), axis=-1))
        return tf.stack(channels, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, len(self._starts))

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "extent": self.extent, "sigma": self.sigma}


def build_hand(image_size: int, class_count: int) -> keras.Model:
    """A regularised CNN over the hand's skeleton, drawn from its 21 keypoints.

    Input: ``keypoints`` (21, 3) float32 in the aligned crop's frame (``rps.hands``);
    ``image_size`` sizes the crop shown to users, not this model.  ``KeypointHeatmaps`` draws
    the bones as a 32x32x6 image; then the compact model's blocks (3x3 convolution, batch
    normalisation, ReLU, max pooling), global max pooling, L2 and dropout.  Trained on rendered
    hands and one green-screen set, a CNN on the crop's pixels learned how those rooms look:
    on webcam photos it called open hands in a dark room rock while the keypoints said paper
    (docs/hands-first.md).  The skeleton carries no room, light or skin.
    """
    keypoints = keras.Input(shape=(21, 3), name="keypoints")
    x = KeypointHeatmaps(name="skeleton")(keypoints)
    x = _pooled_features(x, (32, 64, 128, 128), dense_units=64)
    return keras.Model(keypoints, _classifier_head(x, class_count), name="hand")


def average_ensemble(members: list[keras.Model]) -> keras.Model:
    """One model whose output is the mean of ``members``' class probabilities.

    The members share their inputs (the same names, shapes and order) and were trained
    separately (``rps.training``, ``TrainConfig.members``); averaging models that differ only
    in their random initialisation and data order lowers the variance of the answers, the
    classic deep-ensemble recipe (Lakshminarayanan et al., NeurIPS 2017).  Saved and served as
    one Keras model.
    """
    if len(members) == 1:
        return members[0]
    inputs = [keras.Input(shape=tuple(tensor.shape[1:]), name=tensor.name, dtype=tensor.dtype)
              for tensor in members[0].inputs]
    feed = inputs if len(inputs) > 1 else inputs[0]
    outputs = [keras.Model(member.input, member.output, name=f"member_{index + 1}")(feed)
               for index, member in enumerate(members)]
    return keras.Model(feed, layers.Average(name="ensemble_mean")(outputs),
                       name=f"{members[0].name}_x{len(members)}")


def input_names(model: keras.Model) -> list[str]:
    """The model's input names: ``pixels``, ``keypoints`` or both."""
    return [tensor.name for tensor in model.inputs]


def takes_keypoints(model: keras.Model) -> bool:
    return "keypoints" in input_names(model)


def takes_pixels(model: keras.Model) -> bool:
    return "pixels" in input_names(model)


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
    "hand": Architecture(
        build_hand, "adam", 1e-3,
        "shipped: CNN on the hand's skeleton (bone heat maps of 21 keypoints), BatchNorm, L2, Dropout",
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
