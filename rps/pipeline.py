"""``tf.data`` input pipelines for models of whole photos (``input="image"``): decode, resize,
cache, shuffle, batch, augment, prefetch.

Decoding a 300x300 PNG costs more than a small CNN's forward pass, so decoded and resized
images are cached in memory (as uint8, a quarter of float32) when they fit the budget, and
streamed from disk each epoch when they do not: the 27-class, 50,000-image case the study
could not fit.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from rps.augmentation import Augmenter
from rps.datasets import LabelledImages
from rps.images import load_rgb

# Decoded images up to this size are kept in memory; the study's train split at 300x300 is
# 680 MB as uint8, and a machine that trains at all has a few GB free.
DEFAULT_CACHE_BYTES = 1_500_000_000
AUTOTUNE = tf.data.AUTOTUNE


def _load(path: bytes | np.ndarray) -> np.ndarray:
    """``load_rgb`` for ``tf.numpy_function``: the path arrives as bytes (in a graph) or as a
    0-d object array (eagerly)."""
    if isinstance(path, np.ndarray):
        path = path.item()
    return load_rgb(os.fsdecode(path))


def decode_and_resize(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """File -> RGB uint8 tensor of shape (size, size, 3).

    Decoded by ``rps.images.load_rgb``, the decoder serving uses (EXIF orientation,
    transparency on white, 16-bit, palette and float images), not TensorFlow's own decoders,
    which differ on each of those.  ``rps.training`` checks every file before streaming, so a
    decode error here means a file changed during training.
    """
    image = tf.numpy_function(_load, [path], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    return resize_for_model(image, image_size)


def resize_for_model(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """The one resize used for training, evaluation and prediction alike.

    The aspect ratio is kept: the longer side is scaled to ``image_size`` and the shorter one
    is extended by repeating its edge rows (or columns), which are background in a photo of a
    hand.  Stretching a 640x480 webcam frame to a square squashes an open hand that enters
    from the side into something fist-like; a crop would cut its fingers off.
    """
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    scale = image_size / tf.cast(tf.maximum(height, width), tf.float32)
    new_height = tf.clip_by_value(tf.cast(tf.round(tf.cast(height, tf.float32) * scale), tf.int32), 1, image_size)
    new_width = tf.clip_by_value(tf.cast(tf.round(tf.cast(width, tf.float32) * scale), tf.int32), 1, image_size)
    resized = tf.image.resize(image, [new_height, new_width], antialias=True)
    resized = _extend_edges(resized, image_size - new_height, axis=0)
    resized = _extend_edges(resized, image_size - new_width, axis=1)
    resized = tf.ensure_shape(resized, [image_size, image_size, 3])
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def _extend_edges(image: tf.Tensor, missing: tf.Tensor, axis: int) -> tf.Tensor:
    """Pad ``missing`` rows (axis 0) or columns (axis 1), split over both sides, by edge repetition."""
    before = missing // 2
    first = tf.gather(image, [0], axis=axis)
    last = tf.gather(image, [tf.shape(image)[axis] - 1], axis=axis)
    return tf.concat([tf.repeat(first, before, axis=axis), image,
                      tf.repeat(last, missing - before, axis=axis)], axis=axis)


def fits_in_cache(image_count: int, image_size: int, budget: int = DEFAULT_CACHE_BYTES) -> bool:
    return image_count * image_size * image_size * 3 <= budget


def make_dataset(
    images: LabelledImages,
    image_size: int,
    batch_size: int,
    shuffle: bool = False,
    augment: Augmenter | None = None,
    seed: int | None = None,
    cache_budget: int = DEFAULT_CACHE_BYTES,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of (uint8-valued images, integer labels) ready for ``model.fit``."""
    # Bytes, not str: a file name that is not UTF-8 (surrogate-escaped) still reaches the decoder.
    paths = tf.constant([os.fsencode(path) for path in images.paths], dtype=tf.string)
    labels = tf.constant(list(images.labels), dtype=tf.int32)
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    options = tf.data.Options()
    # Evaluation pairs predictions with labels by position, so order is kept unless the data
    # is shuffled anyway without a seed (then letting fast elements overtake saves time).
    options.deterministic = not shuffle or seed is not None
    dataset = dataset.with_options(options)
    if shuffle and not fits_in_cache(len(images), image_size, cache_budget):
        # Streaming: shuffle the cheap file names before decoding, not the decoded pixels.
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(
        lambda path, label: (decode_and_resize(path, image_size), label),
        num_parallel_calls=AUTOTUNE,
    )
    if fits_in_cache(len(images), image_size, cache_budget):
        dataset = dataset.cache()
        if shuffle:
            dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if augment is not None:
        dataset = dataset.map(lambda batch, label: (augment(batch), label), num_parallel_calls=AUTOTUNE)
    else:
        dataset = dataset.map(lambda batch, label: (tf.cast(batch, tf.float32), label))
    return dataset.prefetch(AUTOTUNE)
