"""Find the hand in a frame and cut it out the same way every time.

The classifier was never the weak part on webcam photos: a hand filling a fifth of a cluttered,
dim room was.  So a hand landmarker finds the hand first, and the model sees only an aligned
crop of it and its 21 keypoints:

1. **Exposure** (``normalise_exposure``): a dim frame is brightened by a gain on its
   luminance, as a camera's auto-exposure would.  A frame too dark to show anything is
   declined as ``"too dark"``.
2. **Detection** (``HandDetector``): MediaPipe's hand landmarker (palm detector plus landmark
   model, Apache 2.0; the model files ship in ``assets/hand_landmarker/``).  The palm detector
   misses hands that fill the frame, so a frame without a hand is tried again inside borders
   of its own edge pixels, and mirrored.  No hand: ``"no hand"``.
3. **Alignment** (``align_hand``): one affine warp rotates the hand so that the line from the
   wrist to the middle finger's knuckle points up, scales it so the hand spans the crop with
   a margin, and centres it.  The keypoints get the same transform, so they are in the crop's
   own frame: independent of where the hand was, how large, and at what angle.

Every array here is RGB, channels last, uint8 unless said otherwise.  OpenCV's ``imread``
and ``VideoCapture`` give BGR: convert with ``cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)`` first.
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rps.errors import HandDetectorError
from rps.native_logs import native_stderr_silenced
from rps.paths import ASSETS

HAND_LANDMARKER = ASSETS / "hand_landmarker" / "hand_landmarker.task"
KEYPOINT_COUNT = 21
# MediaPipe's landmark indices: the wrist and the middle finger's knuckle (MCP joint).
WRIST, MIDDLE_KNUCKLE = 0, 9
# The 21 landmarks as chains from the wrist, one per finger (thumb first), and the knuckles'
# line across the palm.
FINGER_CHAINS = ((0, 1, 2, 3, 4), (0, 5, 6, 7, 8), (0, 9, 10, 11, 12), (0, 13, 14, 15, 16),
                 (0, 17, 18, 19, 20))
KNUCKLE_LINE = ((5, 9), (9, 13), (13, 17))

# MediaPipe's own defaults are 0.5; 0.5 keeps faces, walls and empty rooms out.
MIN_DETECTION_CONFIDENCE = 0.5
# The crop is this many times the hand's landmark extent: landmarks sit on the joints and
# fingertip centres, so the skin around them, and a little of what is around the hand, fit.
CROP_MARGIN = 1.4
# The palm detector misses hands that fill the frame or are cut by its edge, and some hands
# it finds only in the mirror image.  A frame without a hand is tried again inside a border
# of its own edge pixels (as a share of its longer side, on every side), then mirrored.  On
# rps-real-train (1,648 training photos) these retries took hands found from 97.4% to 98.8%,
# and on the no-hand frames of bench/no_hand_frames.py they found nothing
# (bench/detector_retries.py).
RETRY_BORDERS = (0.0, 0.25, 0.5)
MIRROR_RETRY_BORDERS = (0.0, 0.25)
# A hand that is a small part of a whole webcam frame is missed by the palm detector, which
# sees the frame at 192x192.  The last retry looks at four overlapping corner tiles, each this
# share of the frame's height and width (slicing for small objects, as in SAHI: Akyon et al.,
# ICIP 2022).  On rps-real-train photos shrunk into 640x480 frames of a face, hands found went
# from 84.3% to 93.0%; still none in the no-hand frames (bench/detector_retries.py).
TILE_SHARE = 0.6
# Grey and 1-bit (dithered) photos lose hands the palm detector finds in colour; when nothing
# is found in a grey frame, a copy smoothed by a Gaussian of this share of its longer side (at
# least 1 px) is searched too (bench/grey_photos.py).  Colour frames never take this pass.
SMOOTHING_SHARE = 0.005
# A frame whose channels differ by at most this many levels everywhere is grey.
GREY_SPREAD = 2
# Larger frames are searched at this longer side: a 4000x3000 photo without a hand otherwise
# costs a second in the nine passes, for nothing the landmarker could see better.
MAX_DETECTION_SIDE = 1280

# Auto-exposure: frames whose mean luminance is below DIM_LEVEL (of 255) are scaled so that
# their 99th percentile reaches BRIGHT_TARGET, with a gain of at most MAX_GAIN.  A frame whose
# 99th percentile is below DARK_LEVEL shows nothing but sensor noise: it is "too dark".
DIM_LEVEL = 80.0
BRIGHT_TARGET = 230.0
MAX_GAIN = 8.0
DARK_LEVEL = 12.0

NO_HAND = "no hand"
TOO_DARK = "too dark"


@dataclass(frozen=True)
class Hand:
    """One detected hand.

    ``keypoints``: float32 (21, 3), x and y in pixels of the frame it was found in, z in the
    same unit (MediaPipe's relative depth, scaled like x).  ``score``: the landmark model's
    confidence in ``handedness`` ("Left" or "Right", as MediaPipe names a mirrored selfie
    view), 0..1.
    """

    keypoints: np.ndarray
    score: float
    handedness: str

    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in pixels around the landmarks."""
        x, y = self.keypoints[:, 0], self.keypoints[:, 1]
        return int(x.min()), int(y.min()), int(math.ceil(x.max())), int(math.ceil(y.max()))


def luminance(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an RGB uint8 image, as float32 (H, W)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def normalise_exposure(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """Brighten a dim RGB uint8 frame; return (frame, too_dark).

    Frames at a normal exposure come back unchanged (the same array).  The gain is one number
    per frame applied through a lookup table, so colours keep their ratios.
    """
    # An area average, not every 4th pixel: a fine pattern must not be judged by its dark half.
    scale = min(1.0, 160 / max(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(
        image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
        interpolation=cv2.INTER_AREA)
    sample = luminance(small)
    bright = float(np.percentile(sample, 99))
    if bright < DARK_LEVEL:
        return image, True
    if float(sample.mean()) >= DIM_LEVEL:
        return image, False
    gain = min(MAX_GAIN, BRIGHT_TARGET / max(bright, 1.0))
    if gain <= 1.05:
        return image, False
    table = np.clip(np.arange(256, dtype=np.float32) * gain, 0, 255).astype(np.uint8)
    return cv2.LUT(image, table), False


def is_grey(image: np.ndarray) -> bool:
    """True when an RGB frame has no colour: grey scans, 16-bit grey PNGs, 1-bit bitmaps."""
    sample = image[::4, ::4].astype(np.int16)
    return bool(np.abs(sample[..., 0] - sample[..., 1]).max(initial=0) <= GREY_SPREAD
                and np.abs(sample[..., 1] - sample[..., 2]).max(initial=0) <= GREY_SPREAD)


def smoothed(image: np.ndarray) -> np.ndarray:
    """A Gaussian-blurred copy (sigma ``SMOOTHING_SHARE`` of the longer side): dithering
    dots become grey levels again."""
    sigma = max(1.0, SMOOTHING_SHARE * max(image.shape[:2]))
    return cv2.GaussianBlur(image, (0, 0), sigma)


class HandDetector:
    """MediaPipe's hand landmarker, loaded once from the bundled model files.

    Raises ``HandDetectorError`` when mediapipe is not installed or the model file is missing.
    ``detect`` is safe to call from several threads (one call at a time runs the graph).
    """

    def __init__(self, model_path: Path | str = HAND_LANDMARKER,
                 min_confidence: float = MIN_DETECTION_CONFIDENCE, grey_retry: bool = True):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise HandDetectorError(
                f"The hand landmarker model {model_path} is missing; reinstall the project "
                "(it ships in assets/hand_landmarker/)."
            )
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as error:
            raise HandDetectorError(
                f"mediapipe is not installed ({error}); run pip install -r requirements.txt."
            ) from None
        options = vision.HandLandmarkerOptions(
            # The buffer, not the path: MediaPipe resolves relative paths against its own
            # resource folder, and a path with unusual characters is not always accepted.
            base_options=BaseOptions(model_asset_buffer=model_path.read_bytes()),
            running_mode=vision.RunningMode.IMAGE,
            num_hands=1,
            min_hand_detection_confidence=min_confidence,
            min_hand_presence_confidence=min_confidence,
        )
        self._mp = mp
        self.grey_retry = grey_retry
        with native_stderr_silenced():
            self._landmarker = vision.HandLandmarker.create_from_options(options)
            # The first frames print MediaPipe's one-time graph warnings: spend them here.
            for size in (64, 96):
                self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                 data=np.zeros((size, size + 16, 3), np.uint8)))
        self._lock = threading.Lock()
        weakref.finalize(self, _release, self._landmarker)

    def detect_once(self, image: np.ndarray) -> Hand | None:
        """One pass of the landmarker over the frame as it is, without the retries of ``detect``."""
        frame = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        with self._lock:
            result = self._landmarker.detect(frame)
        if not result.hand_landmarks:
            return None
        height, width = image.shape[:2]
        points = np.array(
            [[p.x * width, p.y * height, p.z * width] for p in result.hand_landmarks[0]], np.float32
        )
        category = result.handedness[0][0]
        return Hand(points, float(category.score), category.category_name)

    def detect(self, image: np.ndarray) -> Hand | None:
        """The most confident hand in an RGB uint8 (H, W, 3) frame, or None.

        Frames larger than ``MAX_DETECTION_SIDE`` are searched at that size (the landmarker
        sees 192 to 224 px anyway) and the keypoints scaled back to the frame's pixels.

        The frame is tried as it is, then inside borders (``RETRY_BORDERS``), mirrored
        (``MIRROR_RETRY_BORDERS``), and last in four overlapping corner tiles
        (``TILE_SHARE``); the first view with a hand wins.  A grey frame without a hand is
        searched again, smoothed (``SMOOTHING_SHARE``).  A frame with a hand usually costs
        one pass (about 12 ms on one core for 640x480); an empty one costs all nine.
        """
        scale = min(1.0, MAX_DETECTION_SIDE / max(image.shape[:2]))
        if scale < 1.0:
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            hand = self.detect(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            return None if hand is None else Hand(hand.keypoints / scale, hand.score, hand.handedness)
        hand = self._detect_views(image)
        if hand is None and self.grey_retry and is_grey(image):
            hand = self._detect_views(smoothed(image))
        return hand

    def _detect_views(self, image: np.ndarray) -> Hand | None:
        for view, to_frame, mirrored in self._views(image):
            hand = self.detect_once(view)
            if hand is None:
                continue
            handedness = hand.handedness
            if mirrored:
                handedness = {"Left": "Right", "Right": "Left"}.get(handedness, handedness)
            return Hand(to_frame(hand.keypoints.copy()), hand.score, handedness)
        return None

    @staticmethod
    def _views(image: np.ndarray):
        """(view, keypoints-to-frame function, mirrored) for each pass, in retry order."""
        height, width = image.shape[:2]
        for mirrored, share in [(False, share) for share in RETRY_BORDERS] + \
                [(True, share) for share in MIRROR_RETRY_BORDERS]:
            view = image[:, ::-1] if mirrored else image
            border = int(round(max(height, width) * share))
            if border:
                view = cv2.copyMakeBorder(view, border, border, border, border, cv2.BORDER_REPLICATE)

            def back(points, border=border, mirrored=mirrored):
                points[:, :2] -= border
                if mirrored:
                    points[:, 0] = width - points[:, 0]
                return points

            yield view, back, mirrored
        tile_height, tile_width = int(height * TILE_SHARE), int(width * TILE_SHARE)
        if min(tile_height, tile_width) < 32:
            return  # a thumbnail: tiles too small to hold a hand the detector could see
        for top in (0, height - tile_height):
            for left in (0, width - tile_width):
                tile = np.ascontiguousarray(image[top:top + tile_height, left:left + tile_width])

                def back(points, top=top, left=left):
                    points[:, 0] += left
                    points[:, 1] += top
                    return points

                yield tile, back, False

    def close(self) -> None:
        self._landmarker.close()


def _release(landmarker) -> None:
    """Close a landmarker; at interpreter exit, let the operating system free it instead.

    MediaPipe closes through a thread pool that is already shut down when a process exits,
    and its ``__del__`` then prints a traceback after every command.  Clearing its handle
    (a private attribute) makes that ``__del__`` a no-op.
    """
    try:
        landmarker.close()
    except (RuntimeError, TypeError, AttributeError):
        landmarker._handle = None


def alignment_transform(keypoints: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 affine matrix that maps frame pixels to an upright, centred ``size`` crop."""
    points = keypoints[:, :2].astype(np.float64)
    direction = points[MIDDLE_KNUCKLE] - points[WRIST]
    angle = math.atan2(direction[1], direction[0])
    # Rotate by phi so the wrist-to-knuckle direction becomes "up" (-y in image coordinates).
    phi = -math.pi / 2 - angle
    cos, sin = math.cos(phi), math.sin(phi)
    rotation = np.array([[cos, -sin], [sin, cos]])
    rotated = points @ rotation.T
    low, high = rotated.min(axis=0), rotated.max(axis=0)
    centre = (low + high) / 2
    extent = max(float((high - low).max()), 1.0) * CROP_MARGIN
    scale = size / extent
    matrix = np.zeros((2, 3))
    matrix[:, :2] = rotation * scale
    matrix[:, 2] = size / 2 - centre * scale
    return matrix


def align_hand(image: np.ndarray, hand: Hand, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The model's two inputs for one hand.

    Returns (crop, keypoints): crop is uint8 (size, size, 3), the hand upright and centred;
    keypoints is float32 (21, 3) in the crop's frame, scaled to the crop's side (x and y in
    -0.5..0.5 around the centre, y down; z relative depth in the same unit).
    """
    transform = alignment_transform(hand.keypoints, size)
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    source, matrix = image, transform
    if scale < 0.5:
        # warpAffine samples without low-pass filtering; shrink by area first so a large
        # frame's hand is averaged, not aliased.
        factor = scale * 2
        shrunk = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
        source = cv2.resize(image, shrunk, interpolation=cv2.INTER_AREA)
        matrix = transform.copy()
        matrix[:, 0] *= image.shape[1] / shrunk[0]  # columns: x, then y, of the shrunk frame
        matrix[:, 1] *= image.shape[0] / shrunk[1]
    crop = cv2.warpAffine(source, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    xy = hand.keypoints[:, :2].astype(np.float64) @ transform[:, :2].T + transform[:, 2]
    keypoints = np.empty((KEYPOINT_COUNT, 3), np.float32)
    keypoints[:, :2] = (xy - size / 2) / size
    keypoints[:, 2] = hand.keypoints[:, 2] * scale / size
    return crop, keypoints


# Bones to draw, as (start, end) landmark indices: each finger from the wrist, then the line
# of the knuckles.
BONES = tuple(
    (chain[i], chain[i + 1]) for chain in FINGER_CHAINS for i in range(len(chain) - 1)
) + KNUCKLE_LINE


def draw_skeleton(crop: np.ndarray, keypoints: np.ndarray, scale: int = 3) -> np.ndarray:
    """The crop enlarged ``scale`` times with the keypoints and bones drawn on it (RGB uint8)."""
    size = crop.shape[0] * scale
    canvas = cv2.resize(crop, (size, size), interpolation=cv2.INTER_NEAREST)
    points = [(int(round((x + 0.5) * size)), int(round((y + 0.5) * size))) for x, y, _ in keypoints]
    for start, end in BONES:
        cv2.line(canvas, points[start], points[end], (255, 255, 255), 2, cv2.LINE_AA)
    for point in points:
        cv2.circle(canvas, point, 3, (230, 40, 40), -1, cv2.LINE_AA)
    return canvas
