"""rps.explain: Grad-CAM finds known evidence, and explains the shipped model's answers."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from rps.explain import Explainer, GradCam, overlay
from rps.prediction import Predictor

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
SIZE, SQUARE = 32, 8


def squares(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise images, half with a bright square at a random place: images, labels, corners."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 120, (count, SIZE, SIZE, 3)).astype(np.float32)
    labels = np.arange(count) % 2
    corners = rng.integers(0, SIZE - SQUARE, (count, 2))
    for image, label, (top, left) in zip(images, labels, corners):
        if label:
            image[top:top + SQUARE, left:left + SQUARE] = 255
    return images, labels, corners


@pytest.mark.slow
def test_the_heat_maps_peak_on_the_evidence():
    keras.utils.set_random_seed(0)
    pixels = keras.Input((SIZE, SIZE, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 255)(pixels)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    model = keras.Model(pixels, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    images, labels, _ = squares(400, seed=1)
    model.fit(images, labels, epochs=8, batch_size=32, verbose=0)
    test_images, test_labels, corners = squares(60, seed=2)
    cam = GradCam(model)
    hits = total = 0
    for image, label, (top, left) in zip(test_images, test_labels, corners):
        if not label:
            continue
        heat = cam.heat_map(image[None], class_index=1)
        assert heat.shape == (SIZE, SIZE) and 0 <= heat.min() and heat.max() <= 1
        row, column = np.unravel_index(np.argmax(heat), heat.shape)
        hits += top <= row < top + SQUARE and left <= column < left + SQUARE
        total += 1
    assert hits / total >= 0.9, f"{hits} of {total} heat maps peak on the square"


@pytest.mark.slow
def test_the_shipped_ensemble_is_explained_over_the_crop_it_saw():
    explainer = Explainer(Predictor())
    explanation = explainer.explain(EXAMPLES / "scissors-1.png")
    assert explanation.prediction.label == "scissors"
    assert explanation.heat_map.shape == (64, 64) and explanation.heat_map.max() > 0.5  # it looked at the hand
    assert explanation.overlay.shape == explanation.prediction.crop.shape
    declined = explainer.explain(np.full((240, 320, 3), 128, np.uint8))
    assert declined.prediction.reason == "no hand" and declined.overlay is None


@pytest.mark.slow
def test_a_finetuned_model_is_explained_for_its_own_classes():
    """The class score is the new head's, not a feature of the base's: with the head's second
    class the negation of its first, their maps cannot overlap (ReLU of opposite sums)."""
    from rps.architectures import build_hand
    from rps.finetune import build_finetuned

    keras.utils.set_random_seed(3)
    model = build_finetuned(build_hand(64, 3), 2)
    head = model.get_layer("probabilities")
    kernel = np.random.default_rng(0).normal(0, 1, head.kernel.shape).astype(np.float32)
    kernel[:, 1] = -kernel[:, 0]
    head.set_weights([kernel, np.zeros(2, np.float32)])
    keypoints = Predictor().prepare(EXAMPLES / "rock-1.png").keypoints[None].astype(np.float32)
    cam = GradCam(model)
    first, second = cam.heat_map(keypoints, 0), cam.heat_map(keypoints, 1)
    assert max(first.max(), second.max()) == pytest.approx(1.0)
    assert float((first * second).max()) < 1e-6


def test_overlay_blends_at_the_image_size():
    image = np.zeros((50, 40, 3), np.uint8)
    heat = np.zeros((5, 5), np.float32)
    heat[2, 2] = 1
    blended = overlay(image, heat)
    assert blended.shape == image.shape and blended.dtype == np.uint8 and blended.max() > 0
