"""A live webcam view on the desktop, without a web server: OpenCV reads the camera (or a
video), every frame takes ``Predictor.predict`` (the app's pipeline), and the label, the
probabilities, the hand the model saw and the frames per second are drawn on it.  Shown in a
window (q quits) and/or written to a video file (headless machines).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from rps.errors import RpsError
from rps.prediction import Prediction, Predictor

WHITE, BLACK, GREEN = (255, 255, 255), (0, 0, 0), (60, 200, 60)
INSET = 96  # pixels: the side of the hand crop drawn in the corner
WINDOW = "rps live (q quits)"


class VideoSourceError(RpsError, ValueError):
    """A camera or video file that cannot be opened or read."""


@dataclass
class LiveReport:
    frames: int = 0
    labels: list[str | None] = field(default_factory=list)  # per frame; None when declined
    milliseconds: list[float] = field(default_factory=list)  # per frame: predict and draw

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.milliseconds) if self.milliseconds else 0.0


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.5) -> None:
    """White text with a black outline: readable on any background."""
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, BLACK, 3, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, WHITE, 1, cv2.LINE_AA)


def annotate(frame: np.ndarray, prediction: Prediction, fps: float) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 RGB with the answer drawn on a copy: the label (or the reason
    for none) in a band at the top, one bar per class (up to 5, most probable first) under it on
    a dark panel, the crop the model saw in the bottom-right corner, and ``fps`` bottom left."""
    canvas = np.ascontiguousarray(frame.copy())
    height, width = canvas.shape[:2]
    cv2.rectangle(canvas, (0, 0), (width, 30), BLACK, -1)
    _text(canvas, prediction.label or (prediction.reason or "?"), (8, 22), 0.7)
    ranked = sorted(prediction.items(), key=lambda item: -item[1])[:5]
    if ranked:
        panel = canvas[34:38 + 18 * len(ranked), 0:min(width, 200)]
        panel[:] = (panel * 0.4).astype(np.uint8)  # darkened, so the bars read on a white wall
        for row, (name, probability) in enumerate(ranked):
            top = 38 + row * 18
            cv2.rectangle(canvas, (6, top), (6 + int(60 * probability), top + 12), GREEN, -1)
            _text(canvas, f"{name[:14]} {probability:.0%}", (72, top + 11), 0.42)
    side = min(INSET, width // 3, height // 3)
    if prediction.crop is not None and side >= 32:
        inset = cv2.resize(prediction.crop, (side, side), interpolation=cv2.INTER_AREA)
        canvas[height - side - 4:height - 4, width - side - 4:width - 4] = inset
    _text(canvas, f"{fps:.1f} fps", (8, height - 10))
    return canvas


def check_source(source: int | str | Path) -> None:
    """``VideoSourceError`` for a video file that does not exist or is a folder."""
    if not isinstance(source, int) and not Path(source).exists():
        raise VideoSourceError(f"{source} does not exist.")
    if not isinstance(source, int) and not Path(source).is_file():
        raise VideoSourceError(f"{source} is not a video file.")


def open_source(source: int | str | Path) -> cv2.VideoCapture:
    """A camera index or a video file, opened; ``VideoSourceError`` with a sentence else."""
    check_source(source)
    capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not capture.isOpened():
        what = f"camera {source}" if isinstance(source, int) else str(source)
        raise VideoSourceError(f"Could not open {what}: no such camera, no permission, or not a video OpenCV reads.")
    return capture


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt"


def run_live(source: int | str | Path, predictor: Predictor | None = None, out: Path | str | None = None,
             window: bool | None = None, max_frames: int | None = None) -> LiveReport:
    """Label every frame of ``source`` and show and/or write it annotated (``annotate``).

    ``out``: an .mp4 (or .avi) to write at the source's frame rate.  ``window``: show an OpenCV
    window (default: when a display is there); q or Esc quits.  Raises ``VideoSourceError``.
    """
    predictor = predictor or Predictor()
    window = has_display() if window is None else window
    capture = open_source(source)
    writer = None
    report = LiveReport()
    recent: list[float] = []
    try:
        while max_frames is None or report.frames < max_frames:
            ok, bgr = capture.read()
            if not ok:
                if report.frames == 0:
                    raise VideoSourceError(f"No frame could be read from {source}.")
                break
            started = time.perf_counter()
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            prediction = predictor.predict(rgb)
            recent = (recent + [time.perf_counter()])[-20:]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
            drawn = cv2.cvtColor(annotate(rgb, prediction, fps), cv2.COLOR_RGB2BGR)
            report.milliseconds.append((time.perf_counter() - started) * 1000)
            report.labels.append(prediction.label)
            report.frames += 1
            if out is not None:
                if writer is None:
                    writer = _writer(Path(out), capture, drawn.shape[1], drawn.shape[0])
                writer.write(drawn)
            if window:
                cv2.imshow(WINDOW, drawn)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if window:
            cv2.destroyAllWindows()
    return report


def _writer(out: Path, capture: cv2.VideoCapture, width: int, height: int) -> cv2.VideoWriter:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise VideoSourceError(f"Could not make the folder {out.parent}: {error.strerror or error}.") from None
    rate = capture.get(cv2.CAP_PROP_FPS) or 10.0
    codec = "MJPG" if out.suffix.lower() == ".avi" else "mp4v"
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*codec), rate if rate > 0 else 10.0, (width, height))
    if not writer.isOpened():
        raise VideoSourceError(f"Could not write {out}: use a .mp4 or .avi name in a writable folder.")
    return writer
