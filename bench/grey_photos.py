"""Hands found in grey and black-and-white photos, with and without a smoothed second search.

The palm detector learned on colour photos.  Grey photos (16-bit scans, grey PNGs) and 1-bit
dithered ones (fax-like BMPs) lose hands it finds in colour.  This measures, on photos the
project may train on (every 4th photo of ``rps-real-train``, every 8th of the study's train
split) turned grey and dithered to 1 bit, the share of photos in which ``HandDetector.detect``
finds a hand as they are, and when a copy smoothed with a Gaussian blur is searched after
the photo itself fails; and on the no-hand frames of ``no_hand_frames.py`` turned grey, how
many false hands each finds.  The evaluation sets are not read.

    python -m bench.grey_photos

Writes ``bench/results/grey_photos.json``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from bench.common import DATASETS, STUDY_DATA, machine, require, save_results
from bench.detector_retries import photos
from bench.no_hand_frames import no_hand_frames
from rps.hands import HandDetector, normalise_exposure, smoothed


def grey(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).convert("L").convert("RGB"))


def one_bit(image: np.ndarray) -> np.ndarray:
    """Floyd-Steinberg dithering to black and white, as Pillow saves a 1-bit BMP."""
    return np.asarray(Image.fromarray(image).convert("1").convert("RGB"))


def main() -> None:
    colour = {
        "rps-real-train (every 4th)": photos(require(DATASETS / "rps-real-train"), 4),
        "study train (every 8th)": photos(require(STUDY_DATA) / "train", 8),
    }
    sets = {}
    for name, images in colour.items():
        sets[f"{name}, colour"] = images
        sets[f"{name}, grey"] = [grey(image) for image in images]
        sets[f"{name}, 1-bit dithered"] = [one_bit(image) for image in images]
    sets["no-hand frames, grey (share with a false hand)"] = [grey(frame) for _, frame in no_hand_frames()]
    detector = HandDetector(grey_retry=False)
    rows = {}
    for name, images in sets.items():
        plain = np.array([detector.detect(normalise_exposure(image)[0]) is not None for image in images])
        retried = plain.copy()
        for index in np.flatnonzero(~plain):  # what the shipped detector's grey retry adds
            retried[index] = detector.detect(smoothed(normalise_exposure(images[index])[0])) is not None
        rows[name] = {"n": len(images), "as it is": round(float(plain.mean()), 4),
                      "then smoothed": round(float(retried.mean()), 4)}
        print(name, rows[name], flush=True)
    payload = {"machine": machine(), "share_of_photos_with_a_hand_found": rows}
    print(f"saved {save_results('grey_photos', payload)}")


if __name__ == "__main__":
    main()
