"""Frames with no hand in them, made the same way every run: the "no hand" benchmark set.

Real photos without hands (scikit-image's and matplotlib's sample photos: two faces, a cat, a
coffee cup, a rocket, a motorcycle in a room, brick, grass, gravel, the night sky, printed
text), each cut into 640x480 frames at several places and scales, and synthetic rooms (a lit
gradient, furniture-like blocks, texture and sensor noise), some dimmed.  scikit-image is a
benchmark-only dependency (``pip install scikit-image``); without it only matplotlib's photo
and the synthetic rooms are used, and the count says so.

    python -m bench.no_hand_frames OUT_DIR   # writes the frames as PNG, to look at them
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

FRAME = (480, 640)  # height, width of a webcam frame


def sample_photos() -> dict[str, np.ndarray]:
    """Name -> RGB uint8 photo, from the packages that are installed."""
    import matplotlib

    photos = {}
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if hopper.is_file():
        photos["face-grace-hopper"] = np.asarray(Image.open(hopper).convert("RGB"))
    try:
        from skimage import data
    except ImportError:
        return photos
    # The astronaut portrait shows a gloved hand in its lower left: only its upper part is used.
    photos["face-astronaut"] = data.astronaut()[:300]
    photos["motorcycle"] = data.stereo_motorcycle()[0]
    for name in ("chelsea", "coffee", "rocket", "brick", "grass", "gravel",
                 "hubble_deep_field", "page", "text", "coins", "moon"):
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        photos[name] = image[..., :3].astype(np.uint8)
    return photos


def frames_from_photo(photo: np.ndarray, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """``count`` 640x480 frames: the whole photo, then random crops of 40-100% of it."""
    height, width = FRAME
    frames = [np.asarray(Image.fromarray(photo).resize((width, height), Image.BILINEAR))]
    for _ in range(count - 1):
        share = rng.uniform(0.4, 1.0)
        crop_h = max(8, int(photo.shape[0] * share))
        crop_w = max(8, int(min(photo.shape[1], crop_h * width / height)))
        top = rng.integers(0, photo.shape[0] - crop_h + 1)
        left = rng.integers(0, photo.shape[1] - crop_w + 1)
        crop = photo[top:top + crop_h, left:left + crop_w]
        frames.append(np.asarray(Image.fromarray(crop).resize((width, height), Image.BILINEAR)))
    return frames


def synthetic_room(rng: np.random.Generator) -> np.ndarray:
    """A wall with a lighting gradient, a few blocks of furniture, texture and noise."""
    height, width = FRAME
    corners = rng.uniform(20, 235, (2, 2, 3)).astype(np.float32)
    room = np.asarray(Image.fromarray(corners.astype(np.uint8)).resize((width, height), Image.BILINEAR),
                      np.float32)
    for _ in range(rng.integers(1, 6)):
        top, left = rng.integers(0, height - 40), rng.integers(0, width - 40)
        block_h, block_w = rng.integers(40, height // 2), rng.integers(40, width // 2)
        room[top:top + block_h, left:left + block_w] = rng.uniform(0, 255, 3)
    texture = np.asarray(Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).resize(
        (width, height), Image.BICUBIC), np.float32) - 128
    room += texture * rng.uniform(0, 0.4) + rng.normal(0, rng.uniform(1, 8), room.shape)
    room *= rng.uniform(0.25, 1.0)  # some rooms are dim
    return np.clip(room, 0, 255).astype(np.uint8)


def no_hand_frames(seed: int = 0, per_photo: int = 6, synthetic: int = 60) -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8 480x640 frame) pairs, the same on every call with the same seed."""
    rng = np.random.default_rng(seed)
    frames = []
    for name, photo in sample_photos().items():
        frames += [(f"{name}-{index}", frame)
                   for index, frame in enumerate(frames_from_photo(photo, rng, per_photo))]
    frames += [(f"room-{index}", synthetic_room(rng)) for index in range(synthetic)]
    return frames


def in_room_with_a_face(photos: list[tuple[np.ndarray, object]], seed: int = 0) -> list[tuple[np.ndarray, object]]:
    """Each photo shrunk to 200 px (its longer side) and pasted at a random place of a 640x480 frame showing a
    face (the sample portraits of ``no_hand_frames``): a hand that is a small part of a whole
    webcam frame with a person in view.  A stand-in for real whole frames, which are kept
    outside this project."""
    rng = np.random.default_rng(seed)
    faces = [frame for name, frame in no_hand_frames() if name.startswith("face-")]
    framed = []
    for image, label in photos:
        frame = faces[rng.integers(len(faces))].copy()
        scale = 200 / max(image.shape[:2])
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        hand = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        top, left = rng.integers(0, 480 - hand.shape[0]), rng.integers(0, 640 - hand.shape[1])
        frame[top:top + hand.shape[0], left:left + hand.shape[1]] = hand
        framed.append((frame, label))
    return framed


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in no_hand_frames():
        Image.fromarray(frame).save(out / f"{name}.png")
    print(f"wrote {len(list(out.glob('*.png')))} frames to {out}")
