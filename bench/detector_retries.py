"""How many hands each retry of ``HandDetector.detect`` finds, on training photos and no-hand frames.

The palm detector misses hands that fill the frame or are cut by its edge.  This measures,
on photos the project may train on (``rps-real-train``, every fourth photo of the study's
train split) and on ``no_hand_frames.py``, the share of frames with a hand found by one pass
alone, and with each retry added: a border of 25% and 50% of the frame's longer side, the
mirror image, the mirror image in a 25% border, a CLAHE-equalised grey copy, and four
overlapping corner tiles.  A fourth set puts every second ``rps-real-train`` photo, shrunk to
200 px, into a 640x480 frame of a face: a hand that is a small part of a whole webcam frame.  The
retries ``rps.hands`` uses were chosen from this table; the evaluation sets are not read.

    python -m bench.detector_retries

Writes ``bench/results/detector_retries.json``.
"""

from __future__ import annotations

import cv2
import numpy as np

from bench.common import DATASETS, STUDY_DATA, machine, require, save_results
from bench.no_hand_frames import in_room_with_a_face, no_hand_frames
from rps.hands import MIN_DETECTION_CONFIDENCE, TILE_SHARE, HandDetector, normalise_exposure
from rps.images import is_image_file, load_rgb


def bordered(image: np.ndarray, share: float) -> np.ndarray:
    border = int(round(max(image.shape[:2]) * share))
    return cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_REPLICATE)


def equalised(image: np.ndarray) -> np.ndarray:
    grey = cv2.createCLAHE(2.0, (8, 8)).apply(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


VIEWS = {
    "one pass": lambda image: image,
    "border 25%": lambda image: bordered(image, 0.25),
    "border 50%": lambda image: bordered(image, 0.5),
    "mirror": lambda image: image[:, ::-1],
    "mirror, border 25%": lambda image: bordered(image[:, ::-1], 0.25),
    "CLAHE, border 25%": lambda image: bordered(equalised(image), 0.25),
}


def tiles(image: np.ndarray) -> list[np.ndarray]:
    height, width = image.shape[:2]
    tile_height, tile_width = int(height * TILE_SHARE), int(width * TILE_SHARE)
    return [np.ascontiguousarray(image[top:top + tile_height, left:left + tile_width])
            for top in (0, height - tile_height) for left in (0, width - tile_width)]


def photos(folder, step: int = 1) -> list[np.ndarray]:
    paths = sorted(path for path in folder.rglob("*") if is_image_file(path))[::step]
    return [load_rgb(path) for path in paths]


def main() -> None:
    real_train = photos(require(DATASETS / "rps-real-train"))
    sets = {
        "rps-real-train": real_train,
        "rps-real-train, every 2nd, small in a 640x480 frame of a face": [
            frame for frame, _ in in_room_with_a_face([(image, None) for image in real_train[::2]], seed=1)],
        "study train (every 4th)": photos(require(STUDY_DATA) / "train", 4),
        "no-hand frames": [frame for _, frame in no_hand_frames()],
    }
    detector = HandDetector()
    rows = {}
    for name, images in sets.items():
        found = {view: np.array([detector.detect_once(make(normalise_exposure(image)[0])) is not None
                                 for image in images]) for view, make in VIEWS.items()}
        base = found["one pass"] | found["border 25%"]
        row = {"n": len(images), "one pass": round(float(found["one pass"].mean()), 4),
               "one pass + border 25%": round(float(base.mean()), 4)}
        for view in ("border 50%", "mirror", "mirror, border 25%", "CLAHE, border 25%"):
            row[f"+ {view}"] = round(float((base | found[view]).mean()), 4)
        shipped = base | found["border 50%"] | found["mirror"] | found["mirror, border 25%"]
        row["both borders, both mirrors"] = round(float(shipped.mean()), 4)
        tiled = np.array([any(detector.detect_once(tile) is not None for tile in tiles(normalise_exposure(image)[0]))
                          for image in images])
        row["shipped retries (+ four 60% corner tiles)"] = round(float((shipped | tiled).mean()), 4)
        rows[name] = row
        print(name, row, flush=True)
    payload = {"machine": machine(), "min_detection_confidence": MIN_DETECTION_CONFIDENCE,
               "share_of_frames_with_a_hand_found": rows}
    print(f"saved {save_results('detector_retries', payload)}")


if __name__ == "__main__":
    main()
