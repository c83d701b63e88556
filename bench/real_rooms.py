"""Real hands in real rooms: the shipped pipeline against the references, in one run.

Rows: each ``rps-real-wild-dev`` source and their mean, ``rps-real-dev``, the study's test set,
frames with no hand (``no_hand_frames.py``), the wild-dev photos shrunk into 640x480 frames of
a face (a stand-in for whole webcam frames), and the real photos dimmed to 15%, 25% and 35% of
their brightness.  Columns, measured on the same photos in the same run:

* **pipeline**: the shipped model through ``Predictor.predict`` (hand found, aligned crop and
  keypoints, the model decides); a "no hand" or "too dark" answer on a labelled photo is wrong.
* **rules**: MediaPipe's landmarks (the same detection) with fixed finger rules, untrained:
  a finger is stretched when its tip is farther from the wrist than its middle joint; at most
  one stretched is rock, index and middle only is scissors, anything else is paper.
* **rules+CNN**: the rules, and the whole-photo CNN where no hand is found.
* **whole-photo CNN**: the model shipped before the hand pipeline (commit ``d2878b4``, read
  from git history), on the whole photo.

Dimmed rows also give the declines ("no hand", "too dark") and the share of wrong guesses
(answered, and wrong).  The
latency rows time one 640x480 frame through ``Predictor.predict`` for the pipeline and for
the whole-photo CNN, alternating, in the same run.

    python -m bench.real_rooms [--model assets/model] [--whole-photo-model DIR]

Writes ``bench/results/real_rooms.json``.  Never trains or tunes on these photos.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import DATASETS, ROOT, STUDY_DATA, machine, model_sha256, p50_p95, require, save_results
from bench.no_hand_frames import in_room_with_a_face, no_hand_frames
from rps.datasets import read_class_folders
from rps.hands import NO_HAND, TOO_DARK
from rps.images import load_rgb
from rps.prediction import Predictor

WILD_DEV = DATASETS / "rps-real-wild-dev"
REAL_DEV = DATASETS / "rps-real-dev"
WHOLE_PHOTO_COMMIT = "d2878b4"
DIMMING = (0.15, 0.25, 0.35)
FINGERS = ((6, 8), (10, 12), (14, 16), (18, 20))  # (middle joint, tip) of index..pinky


def rules_label(keypoints: np.ndarray) -> str:
    """Rock, paper or scissors from 21 landmarks by fixed finger rules (the untrained reference)."""
    wrist = keypoints[0, :2]
    stretched = [np.linalg.norm(keypoints[tip, :2] - wrist) > np.linalg.norm(keypoints[joint, :2] - wrist)
                 for joint, tip in FINGERS]
    if sum(stretched) <= 1:
        return "rock"
    if stretched[0] and stretched[1] and not stretched[2] and not stretched[3]:
        return "scissors"
    return "paper"


def whole_photo_model(folder: Path | None) -> Path:
    """The pre-pipeline model folder, from ``--whole-photo-model`` or from git history."""
    if folder:
        return folder
    target = Path(tempfile.mkdtemp(prefix="rps-whole-photo-"))
    for name in ("model.keras", "model.json"):
        blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{WHOLE_PHOTO_COMMIT}:assets/model/{name}"],
                              check=True, capture_output=True).stdout
        (target / name).write_bytes(blob)
    return target


def labelled(folder: Path) -> list[tuple[np.ndarray, str]]:
    names, images = read_class_folders(folder)
    return [(load_rgb(path), names[label]) for path, label in zip(images.paths, images.labels)]


def score(pipeline: Predictor, whole: Predictor, photos: list[tuple[np.ndarray, str | None]]) -> dict:
    """Accuracy per method (a label of None means the right answer is "no hand")."""
    counts = {"pipeline": 0, "rules": 0, "rules+CNN": 0, "whole-photo CNN": 0}
    declined = {NO_HAND: 0, TOO_DARK: 0}
    for image, truth in photos:
        prediction = pipeline.predict(image)
        whole_label = whole.predict(image).label
        rules = rules_label(prediction.hand.keypoints) if prediction.hand is not None else None
        if prediction.reason:
            declined[prediction.reason] += 1
        answers = {"pipeline": prediction.label, "rules": rules,
                   "rules+CNN": rules if rules else (whole_label if truth else None),
                   "whole-photo CNN": whole_label}
        for method, answer in answers.items():
            counts[method] += answer == truth
    total = len(photos)
    result = {method: round(correct / total, 4) for method, correct in counts.items()}
    result.update(n=total, no_hand=declined[NO_HAND], too_dark=declined[TOO_DARK])
    return result


def dimmed(photos: list[tuple[np.ndarray, str]], factor: float) -> list[tuple[np.ndarray, str]]:
    return [(np.round(image.astype(np.float32) * factor).astype(np.uint8), label) for image, label in photos]


def in_frame(image: np.ndarray) -> np.ndarray:
    """A photo fitted into a 640x480 frame, edges extended: a whole webcam frame's size."""
    scale = 480 / image.shape[0]
    resized = np.asarray(Image.fromarray(image).resize((max(1, int(image.shape[1] * scale)), 480)))
    missing = 640 - resized.shape[1]
    if missing <= 0:
        return resized[:, :640]
    return np.pad(resized, ((0, 0), (missing // 2, missing - missing // 2), (0, 0)), mode="edge")


def latency(pipeline: Predictor, whole: Predictor, frames: list[np.ndarray], repeats: int) -> dict:
    timings = {"pipeline": [], "whole-photo CNN": []}
    for frame in frames[:4]:  # warm both up
        pipeline.predict(frame), whole.predict(frame)
    for index in range(repeats):
        frame = frames[index % len(frames)]
        for name, predictor in (("pipeline", pipeline), ("whole-photo CNN", whole)):
            started = time.perf_counter()
            predictor.predict(frame)
            timings[name].append((time.perf_counter() - started) * 1000)
    result = {}
    for name, values in timings.items():
        p50, p95 = p50_p95(values)
        result[name] = {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}
    result["ratio_p50"] = round(result["pipeline"]["p50_ms"] / result["whole-photo CNN"]["p50_ms"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "assets" / "model")
    parser.add_argument("--whole-photo-model", type=Path)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()

    pipeline = Predictor(args.model)
    whole = Predictor(whole_photo_model(args.whole_photo_model))
    rows: dict[str, dict] = {}
    wild = {}
    for source in sorted(path for path in require(WILD_DEV).iterdir() if path.is_dir()):
        wild[source.name] = labelled(source)
        rows[f"wild-dev/{source.name}"] = score(pipeline, whole, wild[source.name])
        print(source.name, rows[f"wild-dev/{source.name}"], flush=True)
    methods = ("pipeline", "rules", "rules+CNN", "whole-photo CNN")
    rows["wild-dev mean of sources"] = {
        method: round(float(np.mean([rows[f"wild-dev/{name}"][method] for name in wild])), 4)
        for method in methods
    }
    rows["wild-dev mean of sources"]["worst source (pipeline)"] = min(
        rows[f"wild-dev/{name}"]["pipeline"] for name in wild)
    real_dev = labelled(require(REAL_DEV))
    rows["real-dev"] = score(pipeline, whole, real_dev)
    print("real-dev", rows["real-dev"], flush=True)
    rows["study test"] = score(pipeline, whole, labelled(require(STUDY_DATA) / "test"))
    print("study test", rows["study test"], flush=True)
    frames = no_hand_frames()
    rows["no-hand frames"] = score(pipeline, whole, [(frame, None) for _, frame in frames])
    print("no-hand", rows["no-hand frames"], flush=True)
    everything_real = real_dev + [item for photos in wild.values() for item in photos]
    rows["wild-dev photos small in a 640x480 frame with a face"] = score(
        pipeline, whole, in_room_with_a_face([item for photos in wild.values() for item in photos]))
    print("small, beside a face", rows["wild-dev photos small in a 640x480 frame with a face"], flush=True)
    for factor in DIMMING:
        row = score(pipeline, whole, dimmed(everything_real, factor))
        row["wrong_guesses"] = round(1 - row["pipeline"] - (row["no_hand"] + row["too_dark"]) / row["n"], 4)
        rows[f"real photos at {factor:.0%} brightness"] = row
        print(f"dimmed {factor:.0%}", row, flush=True)
    frames_640 = [in_frame(image) for image, _ in everything_real[::25]]
    timing = latency(pipeline, whole, frames_640, args.repeats)
    # A frame without a hand takes every retry of the detector: the Live tab's worst case.
    timing["no-hand frames"] = latency(pipeline, whole, [frame for _, frame in frames[::6]], args.repeats // 2)
    print("latency", timing, flush=True)
    payload = {"machine": machine(), "model_sha256": model_sha256(args.model),
               "whole_photo_model": f"commit {WHOLE_PHOTO_COMMIT}" if not args.whole_photo_model
               else str(args.whole_photo_model),
               "rows": rows, "latency_640x480": timing}
    print(f"saved {save_results('real_rooms', payload)}")
    print("\n| set | n | pipeline | rules | rules+CNN | whole-photo CNN | no hand | too dark |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        cells = [f"{row[m]:.1%}" for m in methods]
        print(f"| {name} | {row.get('n', '')} | " + " | ".join(cells)
              + f" | {row.get('no_hand', '')} | {row.get('too_dark', '')} |")


if __name__ == "__main__":
    main()
