"""rps.live and `python -m rps live`: a video in, every frame labelled and written annotated."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rps.cli import main
from rps.live import VideoSourceError, annotate, run_live
from rps.prediction import Prediction

pytestmark = pytest.mark.slow  # the hand pipeline on every frame

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
SHOWN = ["rock-1.png", "paper-1.png", "scissors-1.png"]
FRAMES_EACH = 3


def write_video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (300, 300))
    for name in SHOWN:
        frame = cv2.imread(str(EXAMPLES / name))
        for _ in range(FRAMES_EACH):
            writer.write(cv2.resize(frame, (300, 300)))
    writer.release()
    return path


def test_every_frame_is_labelled_like_its_picture_and_written(tmp_path):
    video = write_video(tmp_path / "hands.mp4")
    report = run_live(video, out=tmp_path / "annotated.mp4", window=False)
    expected = [name.split("-")[0] for name in SHOWN for _ in range(FRAMES_EACH)]
    assert report.labels == expected
    written = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == len(expected)
    ok, first = written.read()
    assert ok and first.shape == (300, 300, 3)
    assert report.p50_ms > 0


def test_the_drawing_keeps_the_frame_and_marks_it():
    frame = np.full((240, 320, 3), 128, np.uint8)
    drawn = annotate(frame, Prediction({"rock": 0.9, "paper": 0.1}, crop=np.zeros((64, 64, 3), np.uint8)), 9.5)
    assert drawn.shape == frame.shape and (frame == 128).all()  # the input is untouched
    assert not np.array_equal(drawn, frame)
    declined = annotate(frame, Prediction({}, "no hand"), 0.0)
    assert declined.shape == frame.shape


def test_a_missing_video_and_no_display_are_sentences(tmp_path, capsys, monkeypatch):
    with pytest.raises(VideoSourceError, match="does not exist"):
        run_live(tmp_path / "missing.mp4", window=False)
    with pytest.raises(VideoSourceError, match="not a video file"):
        run_live(tmp_path, window=False)
    (tmp_path / "fake.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoSourceError):
        run_live(tmp_path / "fake.mp4", window=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["live", "--video", str(write_video(tmp_path / "w.mp4"))]) == 2
    assert "no display" in capsys.readouterr().err
    assert main(["live", "--video", str(write_video(tmp_path / "v.mp4")), "--no-window"]) == 2
    assert "--no-window was given): give --out" in capsys.readouterr().err


def test_the_cli_writes_the_annotated_video(tmp_path, capsys):
    video = write_video(tmp_path / "hands.mp4")
    assert main(["live", "--video", str(video), "--out", str(tmp_path / "out.mp4"), "--no-window"]) == 0
    assert "9 frames" in capsys.readouterr().out and (tmp_path / "out.mp4").stat().st_size > 0


def test_an_unwritable_output_and_a_missing_video_are_named_first(tmp_path, capsys):
    video = write_video(tmp_path / "hands.mp4")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["live", "--video", str(video), "--out", str(blocker / "o.mp4"), "--no-window"]) == 2
    assert "Could not make the folder" in capsys.readouterr().err
    assert main(["live", "--video", str(tmp_path / "missing.mp4"), "--no-window"]) == 2
    assert "does not exist" in capsys.readouterr().err  # the video first, before the missing --out
