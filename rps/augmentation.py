"""Training-time augmentation, as Keras preprocessing layers run inside ``tf.data``.

Two recipes:

* ``study``: the study's ``ImageDataGenerator`` settings (rotation 20 degrees, shifts 0.2,
  shear 0.2, zoom 0.2, horizontal flip), applied to the training data only.
* ``robust``: what the shipped model needs to work on real hands.  The training hands are
  rendered on pure white, so the background is almost free to mask and replace with random
  colours, gradients and textures; then rotation by up to 100 degrees either way (webcam
  hands enter from either side or from below, seldom upside down), scale changes that keep
  the hand's proportions, mirror images (left and right hands), colour jitter, grayscale,
  blur and noise, and a patch of noise over part of some images (random erasing).  A quarter
  of the images skip all that and get only mild geometry, so the clean renders stay familiar.
  Before either, some hands get the gaps between their fingers filled: open hands held with
  fingers together.

Augmentation runs on uint8-range float batches (0..255) and always returns that range, so the
model's own ``Rescaling`` layer sees the same values at training and at inference.
"""

from __future__ import annotations

import math
import random
from typing import Callable, Iterator

import keras
import tensorflow as tf
from keras import layers

from rps.names import ABLATIONS, AUGMENTATIONS, RECIPES, ROBUST_PARTS  # noqa: F401 - re-exported

Augmenter = Callable[[tf.Tensor], tf.Tensor]

CHOICES = AUGMENTATIONS  # every name make_augmenter, TrainConfig and the CLI accept

Seeds = Iterator[int | None]


def seed_stream(seed: int | None) -> Seeds:
    """A different seed for every random layer, all fixed by ``seed`` (None: unseeded).

    Keras layers built with the same seed draw the same numbers.  Before this, rotation, zoom,
    shift, flip and the clean-share choice moved in lockstep: every rotated hand got the zoom
    of its angle, and every clean image came out mirrored.
    """
    if seed is None:
        while True:
            yield None
    draws = random.Random(seed)
    while True:
        yield draws.randrange(2**31)


def study_layers(seeds: Seeds) -> list[keras.layers.Layer]:
    """The study's settings, each as the Keras 3 layer that replaces ImageDataGenerator's."""
    return [
        layers.RandomRotation(20 / 360, fill_mode="nearest", seed=next(seeds)),
        layers.RandomTranslation(0.2, 0.2, fill_mode="nearest", seed=next(seeds)),
        layers.RandomShear(x_factor=0.2, y_factor=0.2, fill_mode="nearest", seed=next(seeds)),
        layers.RandomZoom(0.2, fill_mode="nearest", seed=next(seeds)),
        layers.RandomFlip("horizontal", seed=next(seeds)),
    ]


def background_mask(images: tf.Tensor) -> tf.Tensor:
    """Soft mask (1 = background) of the bright, colourless pixels around a rendered hand.

    Skin is never both this bright and this grey; the rendered backdrop (white with soft
    shadows) always is.  The soft edges keep the hand's outline anti-aliased.
    """
    darkest = tf.reduce_min(images, axis=-1, keepdims=True)
    chroma = tf.reduce_max(images, axis=-1, keepdims=True) - darkest
    bright = tf.clip_by_value((darkest - 200.0) / 30.0, 0.0, 1.0)
    grey = tf.clip_by_value((30.0 - chroma) / 15.0, 0.0, 1.0)
    return bright * grey


def backdrop_mask(images: tf.Tensor) -> tf.Tensor:
    """Soft mask (1 = backdrop) of a rendered white backdrop or a green screen.

    Green screen: green exceeds both red and blue by a wide margin, which skin (red above
    green) never does.  ``rps-real-train``'s photos are taken on one.
    """
    red, green, blue = images[..., 0:1], images[..., 1:2], images[..., 2:3]
    greenness = tf.minimum(green - red, green - blue)
    green_screen = tf.clip_by_value((greenness - 15.0) / 20.0, 0.0, 1.0)
    return tf.maximum(background_mask(images), green_screen)


def random_backgrounds(shape: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Backgrounds mixing a smooth gradient, a coarse texture and pixel noise, per image."""
    batch, height, width = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    gradient = tf.random.stateless_uniform([batch, 2, 2, 3], seeds[0], 0.0, 255.0)
    texture = tf.random.stateless_uniform([batch, 8, 8, 3], seeds[1], -80.0, 80.0)
    texture_weight = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[2], 0.0, 1.0) ** 3
    noise_level = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[3], 0.0, 12.0)
    size = tf.stack([height, width])
    background = tf.image.resize(gradient, size) + texture_weight * tf.image.resize(texture, size)
    noise = tf.random.stateless_normal(tf.shape(background), seeds[4]) * noise_level
    return tf.clip_by_value(background + noise, 0.0, 255.0)


class RandomShareLayer(layers.Layer):
    """A training-only layer that changes a random share (``probability``) of the images."""

    def __init__(self, probability: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.probability = probability
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        return self.transform(images) if training else images

    def transform(self, images: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


class ReplaceBackground(RandomShareLayer):
    """Swap the white backdrop of rendered hands for a random one, with some probability."""

    def mask(self, images: tf.Tensor) -> tf.Tensor:
        return background_mask(images)

    def transform(self, images):
        seed = tf.cast(keras.random.randint([2], 0, 2**30, seed=self.seed_generator), tf.int32)
        mask = self.mask(images)
        backgrounds = random_backgrounds(tf.shape(images), seed)
        chosen = tf.cast(
            tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed + 1)
            < self.probability,
            images.dtype,
        )
        mask = mask * chosen
        return images * (1.0 - mask) + backgrounds * mask


class ReplaceBackdrop(ReplaceBackground):
    """``ReplaceBackground`` for white backdrops and green screens alike."""

    def mask(self, images: tf.Tensor) -> tf.Tensor:
        return backdrop_mask(images)


class RandomNoise(layers.Layer):
    """Gaussian pixel noise of a random strength per image (sensor noise of cheap webcams)."""

    def __init__(self, max_stddev: float = 12.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_stddev = max_stddev
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        batch = tf.shape(images)[0]
        level = keras.random.uniform([batch, 1, 1, 1], 0.0, self.max_stddev, seed=self.seed_generator)
        noise = keras.random.normal(tf.shape(images), seed=self.seed_generator)
        return tf.clip_by_value(images + noise * level, 0.0, 255.0)


class FillFingerGaps(RandomShareLayer):
    """Fill the narrow gaps between fingers on a light backdrop, for some of the images.

    Every rendered paper in the training set spreads its fingers, but many real open hands,
    and one rendered sequence of the test set, hold them together; a model that has only seen
    spread fingers calls such a flat hand a fist.  A grey-scale opening (minimum filter, then
    maximum filter) grows the skin over bright gaps narrower than its window and leaves wider
    shapes, such as the V of two fingers, as they were.  Half of the chosen images get a 3 px
    window, half a 5 px one.  Every class gets it, not only paper: filled gaps seen on paper
    alone became a cue for paper, and such runs lost the gain (docs/whole-photo-model.md).
    """

    def __init__(self, probability: float = 0.4, seed: int | None = None, **kwargs):
        super().__init__(probability, seed, **kwargs)

    def transform(self, images):
        draw = keras.random.uniform([tf.shape(images)[0], 1, 1, 1], seed=self.seed_generator)
        narrow, wide = _grey_opening(images, 3), _grey_opening(images, 5)
        images = tf.where(draw < self.probability / 2, narrow, images)
        return tf.where((draw >= self.probability / 2) & (draw < self.probability), wide, images)


def _grey_opening(images: tf.Tensor, window: int) -> tf.Tensor:
    darkest = -tf.nn.max_pool2d(-images, window, 1, "SAME")
    return tf.nn.max_pool2d(darkest, window, 1, "SAME")


def robust_layers(
    seeds: Seeds,
    replace_background: bool = True,
    wide_rotation: bool = True,
    colour: bool = True,
    blur_and_noise: bool = True,
    erase_patches: bool = True,
) -> list[keras.layers.Layer]:
    """The shipped model's recipe; each switch is one row of the ablation in ``bench/``."""
    white = 255.0
    # Up to 100 degrees either way: hands from below, the left or the right.  The full circle,
    # as before, also spent training on upside-down hands; stopping at 100 degrees gained 0.7
    # test points and 7 real-photo points over four seeds (docs/whole-photo-model.md).
    rotation = 100 / 360 if wide_rotation else 20 / 360
    stack: list[keras.layers.Layer] = [
        # Geometry first, filling with white so the background swap also covers the corners.
        layers.RandomRotation(rotation, fill_mode="constant", fill_value=white, seed=next(seeds)),
        # Hands from 0.5 to 1.43 times their rendered size, in proportion.  The test set's
        # hands are smaller than the training renders (27 against 35 px wide at 64 px), and the
        # previous range stopped at 0.77.  Zooming height and width independently, as before,
        # also stretched open hands into fist-like shapes (docs/whole-photo-model.md).
        layers.RandomZoom((-0.3, 1.0), fill_mode="constant", fill_value=white, seed=next(seeds)),
        layers.RandomTranslation(0.15, 0.15, fill_mode="constant", fill_value=white, seed=next(seeds)),
        # Mirror images: left and right hands.  Keras' "horizontal_and_vertical" flips both ways
        # at once, which is a half turn, never a mirror image.
        layers.RandomFlip("horizontal", seed=next(seeds)),
    ]
    if replace_background:
        # 30% keep the white backdrop: the test set and many product photos are clean renders.
        stack.append(ReplaceBackground(0.7, seed=next(seeds)))
    if colour:
        stack += [
            layers.RandomColorJitter(
                value_range=(0, 255),
                brightness_factor=0.2,
                contrast_factor=0.3,
                saturation_factor=(0.3, 0.7),
                hue_factor=0.05,
                seed=next(seeds),
            ),
            layers.RandomGrayscale(0.1, seed=next(seeds)),
        ]
    if blur_and_noise:
        stack += [
            layers.RandomGaussianBlur(factor=0.5, kernel_size=3, sigma=(0.1, 1.5), value_range=(0, 255), seed=next(seeds)),
            RandomNoise(8.0, seed=next(seeds)),
        ]
    if erase_patches:
        # Random erasing (Zhong et al., 2020): each image draws a probability from 0 to 0.5, so
        # about a quarter get a patch of noise over part of the frame, often over the fingers.
        # A paper whose finger gaps are hidden must still be paper, so the model learns the open
        # hand's outline too, not only its gaps; without it, more flat hands with fingers
        # together were called rock (docs/whole-photo-model.md, four seeds).
        stack.append(layers.RandomErasing(factor=0.5, value_range=(0, 255), seed=next(seeds)))
    return stack


def hand_layers(seeds: Seeds) -> list[keras.layers.Layer]:
    """For aligned hand crops (``rps.hands``): the hand is already upright, centred and sized.

    So geometry stays small (the alignment's own jitter), while everything a room changes is
    varied widely: the backdrop (white renders and green screen swapped for random ones),
    light (brightness down to a dim room's), colour, blur, noise, and a patch over part of
    the hand.
    """
    return [
        layers.RandomRotation(20 / 360, fill_mode="constant", fill_value=255.0, seed=next(seeds)),
        layers.RandomZoom((-0.15, 0.15), fill_mode="constant", fill_value=255.0, seed=next(seeds)),
        layers.RandomTranslation(0.08, 0.08, fill_mode="constant", fill_value=255.0, seed=next(seeds)),
        layers.RandomFlip("horizontal", seed=next(seeds)),
        ReplaceBackdrop(0.7, seed=next(seeds)),
        layers.RandomColorJitter(
            value_range=(0, 255), brightness_factor=0.4, contrast_factor=0.4,
            saturation_factor=(0.2, 0.8), hue_factor=0.05, seed=next(seeds),
        ),
        layers.RandomGrayscale(0.1, seed=next(seeds)),
        layers.RandomGaussianBlur(factor=0.5, kernel_size=3, sigma=(0.1, 1.5), value_range=(0, 255),
                                  seed=next(seeds)),
        RandomNoise(8.0, seed=next(seeds)),
        layers.RandomErasing(factor=0.3, value_range=(0, 255), seed=next(seeds)),
    ]


# Landmark indices of the finger joints (MCP, PIP, DIP, tip) of index, ring and little finger;
# the middle finger (9..12) is the axis the others close on or spread from.
_SIDE_FINGERS = ((5, 6, 7, 8), (13, 14, 15, 16), (17, 18, 19, 20))
_MIDDLE_MCP, _MIDDLE_PIP = 9, 10


class KeypointJitter(layers.Layer):
    """Jitter a batch of aligned keypoints (B, 21, 3) the way hands and the landmarker vary.

    A small rotation (up to 15 degrees) and scale (0.9 to 1.1) about the crop centre, a shift
    of up to 3% of the crop, 1% noise per point, and a mirror image for half the hands.  For
    half the hands, the index, ring and little fingers are also turned about their knuckles
    towards the middle finger or away from it (spread times 0.2 to 1.3): every rendered paper
    of the study's training set spreads its fingers, while many real open hands, and one
    rendered sequence of its test set, hold them together (docs/whole-photo-model.md, "Finger
    gaps filled in some training images", met the same gap with pixels).
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, points, training=True):
        if not training:
            return points
        batch = tf.shape(points)[0]
        draw = lambda shape, low, high: keras.random.uniform(shape, low, high, seed=self.seed_generator)  # noqa: E731
        points = self._change_spread(points, draw)
        angle = draw([batch, 1], -15.0, 15.0) * (math.pi / 180.0)
        scale = draw([batch, 1, 1], 0.9, 1.1)
        mirror = tf.where(draw([batch, 1], 0.0, 1.0) < 0.5, -1.0, 1.0)
        cos, sin = tf.cos(angle), tf.sin(angle)
        x, y, z = points[..., 0] * mirror, points[..., 1], points[..., 2]
        rotated = tf.stack([cos * x - sin * y, sin * x + cos * y, z], axis=-1) * scale
        shift = tf.concat([draw([batch, 1, 2], -0.03, 0.03), tf.zeros([batch, 1, 1])], axis=-1)
        noise = keras.random.normal(tf.shape(points), stddev=0.01, seed=self.seed_generator)
        return rotated + shift + noise

    @staticmethod
    def _change_spread(points, draw):
        batch = tf.shape(points)[0]
        factor = draw([batch, 1], 0.2, 1.3)
        factor = tf.where(draw([batch, 1], 0.0, 1.0) < 0.5, factor, tf.ones_like(factor))
        xy = points[..., :2]
        axis = xy[:, _MIDDLE_PIP] - xy[:, _MIDDLE_MCP]
        axis_angle = tf.atan2(axis[:, 1], axis[:, 0])[:, None]
        updates = []
        for joints in _SIDE_FINGERS:
            knuckle = xy[:, joints[0]]
            first = xy[:, joints[1]] - knuckle
            offset = tf.atan2(first[:, 1], first[:, 0])[:, None] - axis_angle
            offset = tf.atan2(tf.sin(offset), tf.cos(offset))  # wrapped to -pi..pi
            turn = (factor - 1.0) * offset  # (B, 1)
            cos, sin = tf.cos(turn), tf.sin(turn)
            for joint in joints[1:]:
                relative = xy[:, joint] - knuckle
                moved = tf.stack([cos[:, 0] * relative[:, 0] - sin[:, 0] * relative[:, 1],
                                  sin[:, 0] * relative[:, 0] + cos[:, 0] * relative[:, 1]], axis=-1)
                updates.append((joint, knuckle + moved))
        moved_xy = dict(updates)
        columns = [moved_xy.get(index, xy[:, index]) for index in range(21)]
        return tf.concat([tf.stack(columns, axis=1), points[..., 2:]], axis=-1)


def mild_layers(seeds: Seeds) -> list[keras.layers.Layer]:
    """Small rotations, zooms and mirror images: the renders' own look, slightly varied."""
    return [
        layers.RandomRotation(20 / 360, fill_mode="nearest", seed=next(seeds)),
        layers.RandomZoom(0.15, fill_mode="nearest", seed=next(seeds)),
        layers.RandomFlip("horizontal", seed=next(seeds)),
    ]


# The share of images that the robust recipe leaves clean (mild geometry only).  Without it
# the test set's clean renders lost 6 points (docs/whole-photo-model.md): the model saw
# white-backed, upright, sharp hands too rarely to recognise every rendered open hand.
CLEAN_SHARE = 0.25


def make_augmenter(recipe: str, seed: int | None = None) -> Augmenter | None:
    """A function batch -> augmented batch for ``Dataset.map``, or None for ``none``."""
    if recipe == "none":
        return None
    seeds = seed_stream(seed)
    if recipe == "study":
        return _chain(study_layers(seeds))
    if recipe == "hand":
        return _chain(hand_layers(seeds))
    if recipe != "robust" and recipe not in ABLATIONS:
        raise ValueError(f"Unknown augmentation {recipe!r}; choose from {', '.join(CHOICES)}.")
    switches = {name: True for name in ROBUST_PARTS.values()}
    if recipe in ABLATIONS:
        switches[ROBUST_PARTS[recipe.removeprefix("robust-no-")]] = False
    keep_clean = switches.pop("keep_clean")
    fill_finger_gaps = switches.pop("fill_finger_gaps")
    robust = _chain(robust_layers(seeds, **switches))
    if keep_clean:
        robust = _share_with(robust, _chain(mild_layers(seeds)), CLEAN_SHARE, next(seeds))
    if fill_finger_gaps:
        # Before any geometry or backdrop swap: the window matches the renders' own scale, and
        # the backdrop is still the light one the opening assumes.
        return _chain([FillFingerGaps(seed=next(seeds))], then=robust)
    return robust


def _share_with(main: Augmenter, other: Augmenter, share: float, seed: int) -> Augmenter:
    """``other`` for a random ``share`` of each batch's images, ``main`` for the rest."""
    chooser = keras.random.SeedGenerator(seed)

    def augment(images: tf.Tensor) -> tf.Tensor:
        chosen = keras.random.uniform([tf.shape(images)[0], 1, 1, 1], seed=chooser) < share
        return tf.where(chosen, other(images), main(images))

    return augment


def _chain(stack: list[keras.layers.Layer], then: Augmenter | None = None) -> Augmenter:
    def augment(images: tf.Tensor) -> tf.Tensor:
        images = tf.cast(images, tf.float32)
        for layer in stack:
            images = layer(images, training=True)
        images = tf.clip_by_value(images, 0.0, 255.0)
        return then(images) if then is not None else images

    return augment

