"""rps.hands and rps.preprocessing: find the hand, align it, decline frames without one."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rps.errors import HandDetectorError
from rps.hands import (
    KEYPOINT_COUNT, MIDDLE_KNUCKLE, NO_HAND, TOO_DARK, WRIST, Hand, HandDetector, align_hand,
    alignment_transform, normalise_exposure,
)
from rps.preprocessing import Preprocessor, shared_detector

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "assets" / "examples").glob("*.png"))


def example_rgb(name: str) -> np.ndarray:
    return np.asarray(Image.open(next(path for path in EXAMPLES if path.name == name)).convert("RGB"))


def room(seed: int = 0, brightness: float = 1.0) -> np.ndarray:
    """A 640x480 wall with a lighting gradient and furniture-like blocks: no hand in it."""
    rng = np.random.default_rng(seed)
    corners = rng.uniform(30, 230, (2, 2, 3)).astype(np.uint8)
    frame = np.asarray(Image.fromarray(corners).resize((640, 480), Image.BILINEAR), np.float32)
    for _ in range(4):
        top, left = rng.integers(0, 400), rng.integers(0, 560)
        frame[top:top + rng.integers(40, 200), left:left + rng.integers(40, 300)] = rng.uniform(0, 255, 3)
    frame += rng.normal(0, 4, frame.shape)
    return np.clip(frame * brightness, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def detector():
    return shared_detector()


def test_finds_a_hand_in_every_example(detector):
    for path in EXAMPLES:
        hand = detector.detect(np.asarray(Image.open(path).convert("RGB")))
        assert hand is not None, path.name
        assert hand.keypoints.shape == (KEYPOINT_COUNT, 3) and hand.keypoints.dtype == np.float32
        left, top, right, bottom = hand.box()
        assert 0 <= left < right <= 300 and 0 <= top < bottom <= 300, path.name


@pytest.mark.parametrize("seed", range(4))
def test_rooms_and_walls_have_no_hand(detector, seed):
    assert detector.detect(room(seed)) is None


def test_a_hand_filling_the_frame_is_found_by_the_bordered_retry(detector):
    # Cropped to the hand itself, a palm detector often sees no palm; the retry adds a border.
    image = example_rgb("paper-1.png")
    hand = detector.detect(image)
    left, top, right, bottom = hand.box()
    tight = image[max(top, 0):bottom, max(left, 0):right]
    found = detector.detect(tight)
    assert found is not None
    assert found.box()[0] >= -tight.shape[1] * 0.1  # keypoints are in the tight image's pixels


def test_alignment_puts_the_hand_upright_and_centred():
    # A synthetic hand pointing right (wrist left of the knuckle), anywhere in a big frame.
    points = np.zeros((KEYPOINT_COUNT, 3), np.float32)
    rng = np.random.default_rng(1)
    points[:, :2] = rng.uniform([400, 300], [500, 360], (KEYPOINT_COUNT, 2))
    points[WRIST, :2] = (380, 330)
    points[MIDDLE_KNUCKLE, :2] = (450, 330)
    hand = Hand(points, 0.9, "Right")
    crop, keypoints = align_hand(np.zeros((720, 1280, 3), np.uint8), hand, 64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    direction = keypoints[MIDDLE_KNUCKLE, :2] - keypoints[WRIST, :2]
    assert math.degrees(math.atan2(direction[1], direction[0])) == pytest.approx(-90, abs=1e-3)
    extent = keypoints[:, :2].max(axis=0) - keypoints[:, :2].min(axis=0)
    assert extent.max() == pytest.approx(1 / 1.4, rel=1e-3)  # the hand spans the crop, with margin
    centre = (keypoints[:, :2].max(axis=0) + keypoints[:, :2].min(axis=0)) / 2
    assert np.abs(centre).max() < 1e-3


def test_alignment_ignores_where_and_how_large_the_hand_is():
    points = np.random.default_rng(2).uniform(0, 100, (KEYPOINT_COUNT, 3)).astype(np.float32)
    moved = points.copy()
    moved[:, :2] = moved[:, :2] * 3 + 250
    moved[:, 2] *= 3
    frame = np.zeros((800, 800, 3), np.uint8)
    _, reference = align_hand(frame, Hand(points, 1, "Left"), 64)
    _, shifted = align_hand(frame, Hand(moved, 1, "Left"), 64)
    np.testing.assert_allclose(reference, shifted, atol=1e-4)
    assert alignment_transform(points, 64).shape == (2, 3)


def test_exposure_brightens_dim_frames_and_leaves_normal_ones_alone():
    normal = example_rgb("rock-1.png")
    unchanged, dark = normalise_exposure(normal)
    assert unchanged is normal and not dark
    dim = (normal * 0.2).astype(np.uint8)
    brightened, dark = normalise_exposure(dim)
    assert not dark and brightened.mean() > dim.mean() * 3
    black = np.full((480, 640, 3), 3, np.uint8)
    assert normalise_exposure(black)[1] is True


def test_preprocessor_declines_no_hand_and_too_dark(detector):
    preprocessor = Preprocessor(64, "hand", detector)
    assert preprocessor(room(5)).reason == NO_HAND
    assert preprocessor(np.full((480, 640, 3), 4, np.uint8)).reason == TOO_DARK
    prepared = preprocessor(example_rgb("scissors-1.png"))
    assert not prepared.declined and prepared.pixels.shape == (64, 64, 3)
    assert prepared.keypoints.shape == (KEYPOINT_COUNT, 3) and np.abs(prepared.keypoints[:, :2]).max() < 0.5


def test_dim_photos_still_show_their_hand(detector):
    # At 20% brightness the auto-exposure must bring the hand back, not call the frame empty.
    preprocessor = Preprocessor(64, "hand", detector)
    for path in EXAMPLES:
        dim = (np.asarray(Image.open(path).convert("RGB")) * 0.2).astype(np.uint8)
        assert not preprocessor(dim).declined, path.name


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(HandDetectorError, match="missing"):
        HandDetector(tmp_path / "nothing.task")


def test_image_mode_needs_no_detector():
    prepared = Preprocessor(32, "image")(room(1))
    assert prepared.pixels.shape == (32, 32, 3) and prepared.keypoints is None and not prepared.declined


def test_a_small_hand_in_a_whole_frame_is_found_where_it_is(detector):
    # 70 px of hand in a 640x480 room: one pass over the frame misses it, a retry finds it,
    # and its keypoints are in the frame's pixels, inside the pasted patch.
    frame = room(9)
    frame[300:370, 480:550] = np.asarray(Image.fromarray(example_rgb("paper-1.png")).resize((70, 70)))
    assert detector.detect_once(frame) is None
    found = detector.detect(frame)
    assert found is not None
    left, top, right, bottom = found.box()
    assert 470 <= left < right <= 560 and 290 <= top < bottom <= 380


def test_every_retry_view_maps_its_keypoints_back_to_the_frame():
    # One bright pixel: wherever a view (border, mirror, tile) puts it, mapping back lands on it.
    frame = np.zeros((240, 320, 3), np.uint8)
    for x, y in ((20, 30), (300, 200), (160, 120)):
        frame[:] = 0
        frame[y, x] = 255
        for view, to_frame, _ in HandDetector._views(frame):
            found = np.argwhere(view[..., 0] == 255)
            if len(found) == 0:
                continue  # this tile does not hold the pixel
            row, column = found[0]
            # Keypoints are continuous: a pixel's centre is at +0.5.
            point = np.array([[column + 0.5, row + 0.5, 0]], np.float32)
            mapped = to_frame(point)[0]
            assert mapped[:2] == pytest.approx((x + 0.5, y + 0.5), abs=1e-3)


def test_fine_patterns_are_judged_by_their_average_brightness():
    # Every 4th pixel of this pattern is black; the frame's mean is 191 of 255.
    stripes = np.zeros((480, 640, 3), np.uint8)
    stripes[:, 1::4] = stripes[:, 2::4] = stripes[:, 3::4] = 255
    assert normalise_exposure(stripes)[1] is False


def test_big_frames_are_searched_smaller_and_answered_in_their_own_pixels(detector):
    hand = example_rgb("rock-1.png")
    big = np.asarray(Image.fromarray(hand).resize((3000, 3000)))
    found, reference = detector.detect(big), detector.detect(hand)
    assert found is not None
    np.testing.assert_allclose(found.keypoints[:, :2] / 10, reference.keypoints[:, :2], atol=6)


def test_a_hand_far_larger_than_a_thin_frame_still_aligns():
    points = np.random.default_rng(4).uniform(0, 2000, (KEYPOINT_COUNT, 3)).astype(np.float32)
    crop, keypoints = align_hand(np.zeros((2, 3, 3), np.uint8), Hand(points, 1.0, "Right"), 64)
    assert crop.shape == (64, 64, 3) and np.isfinite(keypoints).all()
