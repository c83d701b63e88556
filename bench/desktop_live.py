"""The desktop live mode and Grad-CAM: milliseconds per frame on a 640x480 video.

Writes a 640x480 video of the example hands (each shown for 10 frames, on a grey backdrop),
runs ``rps.live.run_live`` on it headless (predict, draw, encode), and times
``Predictor.predict`` and ``rps.explain.Explainer.explain`` (Grad-CAM) on the same frames: the
cost of the Live tab's "where the model looked" toggle.

    python -m bench.desktop_live

Writes ``bench/results/desktop_live.json``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import ROOT, machine, save_results
from rps.explain import Explainer
from rps.live import run_live
from rps.prediction import Predictor

FRAMES_EACH = 10


def hand_video(path: Path) -> tuple[Path, list[str], list[np.ndarray]]:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    labels, frames = [], []
    for example in sorted((ROOT / "assets" / "examples").glob("*.png")):
        frame = np.full((480, 640, 3), 110, np.uint8)
        hand = cv2.resize(cv2.imread(str(example)), (300, 300))
        frame[90:390, 170:470] = hand
        for _ in range(FRAMES_EACH):
            writer.write(frame)
        labels += [example.name.split("-")[0]] * FRAMES_EACH
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    writer.release()
    return path, labels, frames


def p50(call, frames: list[np.ndarray], repeats: int = 10) -> float:
    for frame in frames:
        call(frame)
    times = []
    for _ in range(repeats):
        for frame in frames:
            started = time.perf_counter()
            call(frame)
            times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def main() -> None:
    predictor = Predictor()
    with tempfile.TemporaryDirectory() as scratch:
        video, labels, frames = hand_video(Path(scratch) / "hands.mp4")
        report = run_live(video, predictor, out=Path(scratch) / "annotated.mp4", window=False)
    explainer = Explainer(predictor)
    payload = {
        "machine": machine(),
        "video": f"640x480, {len(labels)} frames of the {len(frames)} example hands",
        "live_frames": report.frames,
        "live_labels_matching": f"{sum(a == b for a, b in zip(report.labels, labels))}/{len(labels)}",
        "live_ms_per_frame_p50": round(report.p50_ms, 1),
        "predict_ms_p50": p50(predictor.predict, frames),
        "predict_with_grad_cam_ms_p50": p50(explainer.explain, frames),
    }
    print(payload)
    print(f"saved {save_results('desktop_live', payload)}")


if __name__ == "__main__":
    main()
