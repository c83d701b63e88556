"""rps.augmentation: labels untouched, values in 0..255, shapes kept, backgrounds replaced."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import draw_gesture
from rps.augmentation import FillFingerGaps, background_mask, make_augmenter, robust_layers, seed_stream


def gesture_batch(size=48):
    return tf.constant(np.stack([np.asarray(draw_gesture(l, size, seed=i)) for i, l in
                                 enumerate(["rock", "paper", "scissors", "rock"])]), tf.float32)


@pytest.mark.parametrize("recipe", ["study", "robust", "robust-no-background", "robust-no-rotation",
                                    "robust-no-fingers"])
def test_augmented_values_stay_in_pixel_range(recipe):
    batch = gesture_batch()
    augmented = make_augmenter(recipe, seed=1)(batch).numpy()
    assert augmented.shape == batch.shape
    assert augmented.min() >= 0 and augmented.max() <= 255
    assert not np.allclose(augmented, batch.numpy())


def test_none_means_no_augmentation():
    assert make_augmenter("none") is None


def test_unknown_recipe():
    with pytest.raises(ValueError, match="Unknown augmentation"):
        make_augmenter("sparkles")


def test_background_mask_separates_white_from_the_hand():
    image = np.full((1, 8, 8, 3), 255.0, np.float32)
    image[0, 2:6, 2:6] = (200, 150, 120)  # skin-like
    mask = background_mask(tf.constant(image)).numpy()[0, ..., 0]
    assert mask[0, 0] == 1.0 and mask[3, 3] == 0.0


def test_robust_recipe_replaces_the_white_background():
    batch = tf.constant(np.full((32, 32, 32, 3), 255.0, np.float32))
    augmented = make_augmenter("robust-no-clean", seed=3)(batch).numpy()
    # With probability 0.7 per image the white is replaced: most images stop being white.
    whiteish = (augmented.reshape(32, -1).mean(axis=1) > 245).sum()
    assert whiteish < 16


@pytest.mark.parametrize("recipe, low, high", [("robust", 6, 28), ("robust-no-clean", 0, 0)])
def test_robust_recipe_leaves_a_quarter_of_the_images_clean(recipe, low, high):
    # A flat skin-coloured image: mild geometry (nearest fill) leaves it exactly as it was,
    # while the robust recipe's colour jitter and noise always change it.
    batch = tf.constant(np.tile(np.array([200.0, 150.0, 120.0], np.float32), (64, 16, 16, 1)))
    augmented = make_augmenter(recipe, seed=5)(batch).numpy()
    unchanged = np.all(augmented == batch.numpy(), axis=(1, 2, 3)).sum()
    assert low <= unchanged <= high


def test_pipeline_keeps_labels_aligned_under_augmentation(tmp_path):
    from rps.datasets import LabelledImages
    from rps.pipeline import make_dataset

    paths, labels = [], []
    for index in range(12):
        colour = [(255, 0, 0), (0, 0, 255)][index % 2]
        path = tmp_path / f"{index}.png"
        from PIL import Image

        Image.new("RGB", (20, 20), colour).save(path)
        paths.append(str(path))
        labels.append(index % 2)
    dataset = make_dataset(LabelledImages(tuple(paths), tuple(labels)), 16, 4, shuffle=True,
                           augment=make_augmenter("study", 0), seed=0)
    for images, batch_labels in dataset:
        red_dominant = images.numpy()[..., 0].mean(axis=(1, 2)) > images.numpy()[..., 2].mean(axis=(1, 2))
        assert list(red_dominant) == [label == 0 for label in batch_labels.numpy()]


def test_random_layers_draw_independently():
    # Keras layers built with one seed draw the same numbers.  The clean share's chooser and
    # the mild flip then moved in lockstep, so every clean image came out mirrored.
    size = 16
    image = np.empty((size, size, 3), np.float32)
    image[:, : size // 2] = (200.0, 150.0, 120.0)
    image[:, size // 2 :] = (120.0, 80.0, 60.0)
    batch = tf.constant(np.tile(image, (256, 1, 1, 1)))
    augmented = make_augmenter("robust", seed=5)(batch).numpy()
    # Clean images keep the two colours exactly (nearest fill, small rotation): the robust
    # stack's colour jitter and noise change every pixel.
    exact = np.isin(augmented, image).all(axis=-1).mean(axis=(1, 2)) > 0.8
    clean = augmented[exact]
    flipped = clean[:, size // 2, 1, 0] < 160  # the dark half now on the left
    assert len(clean) > 20
    assert 0.2 < flipped.mean() < 0.8


def test_seed_stream_is_distinct_and_repeatable():
    def twelve(seed):
        seeds = seed_stream(seed)
        return [next(seeds) for _ in range(12)]

    assert len(set(twelve(42))) == 12
    assert twelve(42) == twelve(42)
    assert twelve(42) != twelve(7)
    assert next(seed_stream(None)) is None


def dot_centres_after_robust_geometry() -> list[np.ndarray]:
    """Three coloured dots (red, green, blue) through the robust stack's geometry, 64 times.

    Returns the dots' centres per image, [red, green, blue], where all three survived.
    """
    from keras import layers

    geometric = (layers.RandomRotation, layers.RandomZoom, layers.RandomTranslation, layers.RandomFlip)
    stack = [layer for layer in robust_layers(seed_stream(3)) if isinstance(layer, geometric)]
    image = np.full((32, 32, 3), 255.0, np.float32)
    dots = {(255.0, 0.0, 0.0): (10, 10), (0.0, 255.0, 0.0): (10, 22), (0.0, 0.0, 255.0): (22, 10)}
    for colour, (row, column) in dots.items():
        image[row - 2 : row + 3, column - 2 : column + 3] = colour
    images = tf.constant(np.tile(image, (64, 1, 1, 1)))
    for layer in stack:
        images = layer(images, training=True)
    found = []
    for augmented in images.numpy():
        centres = []
        for channel in range(3):
            mask = (augmented[..., channel] > 150) & (np.delete(augmented, channel, -1) < 100).all(-1)
            if not mask.any():
                break
            centres.append(np.argwhere(mask).mean(axis=0))
        else:
            found.append(np.array(centres))
    assert len(found) > 40
    return found


def test_robust_geometry_mirrors_hands():
    # Rotation, zoom and shifts keep a hand's handedness; only a mirror image turns a left hand
    # into a right one.  The dots tell which: the sign of the turn from red to green to blue.
    # (Keras' "horizontal_and_vertical" flip is a half turn, so it never mirrors.)
    turns = []
    for red, green, blue in dot_centres_after_robust_geometry():
        (r1, c1), (r2, c2) = green - red, blue - red
        turns.append(np.sign(r1 * c2 - c1 * r2))
    assert 0.2 < np.mean(np.array(turns) > 0) < 0.8


def test_robust_geometry_keeps_proportions():
    # Independent height and width zooms after a rotation stretched hands along any axis, by
    # up to 1.9 times: a long open hand could come out as compact as a fist.  The dots sit at
    # the corners of a right isosceles triangle, whose two legs must stay equal.
    ratios = [np.linalg.norm(green - red) / np.linalg.norm(blue - red)
              for red, green, blue in dot_centres_after_robust_geometry()]
    assert 0.85 < min(ratios) and max(ratios) < 1.18


def fingers_on_white() -> np.ndarray:
    """Three dark fingers on white: the first two 2 px apart, the last two 8 px apart."""
    image = np.full((16, 32, 3), 255.0, np.float32)
    for left in (4, 10, 22):
        image[2:14, left : left + 4] = (120.0, 80.0, 60.0)
    return image


def test_fill_finger_gaps_fills_narrow_gaps_and_keeps_wide_ones():
    image = fingers_on_white()
    batch = tf.constant(np.tile(image, (32, 1, 1, 1)))
    filled = FillFingerGaps(probability=1.0, seed=0)(batch).numpy()
    # Both windows (3 and 5 px) are drawn, and both must fill the 2 px gap...
    assert (filled[:, 4:12, 8:10] < 130).all()
    # ...leave the 8 px gap (the V of two fingers) white, and never lighten the fingers.
    assert (filled[:, 4:12, 14:22] == 255.0).all()
    assert (filled <= image).all()


def test_fill_finger_gaps_touches_only_its_share_and_only_in_training():
    batch = tf.constant(np.tile(fingers_on_white(), (400, 1, 1, 1)))
    layer = FillFingerGaps(probability=0.4, seed=1)
    changed = (layer(batch).numpy() != batch.numpy()).any(axis=(1, 2, 3)).mean()
    assert 0.3 < changed < 0.5
    assert np.array_equal(layer(batch, training=False).numpy(), batch.numpy())
    assert np.array_equal(FillFingerGaps(probability=0.0)(batch).numpy(), batch.numpy())


@pytest.mark.parametrize("recipe, fills", [("robust", True), ("robust-no-fingers", False),
                                           ("robust-no-clean", True), ("study", False)])
def test_recipes_that_fill_finger_gaps(monkeypatch, recipe, fills):
    calls = []
    monkeypatch.setattr(FillFingerGaps, "call", lambda self, images, training=True: calls.append(1) or images)
    make_augmenter(recipe, seed=2)(gesture_batch())
    assert bool(calls) == fills


def test_robust_geometry_never_turns_hands_upside_down():
    # Hands enter a webcam's frame from below or from either side.  Red to blue points down the
    # image; a mirror image keeps its vertical part, and a turn of at most 100 degrees leaves it
    # at least cos(100 degrees) = -0.17 of its length.  The full circle, as before, reached -1.
    downward = [(blue - red)[0] / np.linalg.norm(blue - red)
                for red, _, blue in dot_centres_after_robust_geometry()]
    assert min(downward) > -0.3
    assert min(downward) < 0.5  # it does turn hands well past the horizontal


def erasers(**switches) -> list[keras.layers.Layer]:
    return [layer for layer in robust_layers(seed_stream(0), **switches)
            if isinstance(layer, keras.layers.RandomErasing)]


def test_robust_recipe_erases_a_patch_of_some_images():
    # Random erasing hides part of the hand, often the finger gaps, in about a quarter of the
    # images (a probability drawn from 0 to 0.5 per image); the rest pass untouched.
    (eraser,) = erasers()
    erased = eraser(tf.constant(np.full((400, 32, 32, 3), 128.0, np.float32)), training=True).numpy()
    changed = (erased != 128.0).any(axis=-1)
    assert 0.15 < changed.any(axis=(1, 2)).mean() < 0.35
    for patch in changed[changed.any(axis=(1, 2))]:
        rows, columns = np.flatnonzero(patch.any(axis=1)), np.flatnonzero(patch.any(axis=0))
        box = patch[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
        assert box.mean() > 0.9 and box.size < 0.5 * patch.size  # one rectangle, never the whole frame
    assert erased.min() >= 0.0 and erased.max() <= 255.0
    assert erasers(erase_patches=False) == []
