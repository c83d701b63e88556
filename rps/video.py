"""Write a .y4m video (Chromium's fake webcam format) from still images.

The browser tests and ``bench/app_speed.py`` feed Chromium a fake webcam with
``--use-file-for-fake-video-capture``; this writes that file.  Only numpy and Pillow: importing it
starts neither TensorFlow nor Gradio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["rgb_to_i420", "write_y4m"]


def rgb_to_i420(rgb: np.ndarray) -> bytes:
    """Full-range BT.601 RGB -> planar Y, U, V with 2x2 chroma subsampling.

    ``rgb``: shape (height, width, 3), any real dtype with values in 0-255 (uint8 from an image);
    height and width must be even.  Returns ``height * width * 3 // 2`` bytes: the Y plane
    (height x width), then U and V (height/2 x width/2 each), one uint8 per sample, row by row.
    """
    rgb = rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.169 * r - 0.331 * g + 0.5 * b + 128
    v = 0.5 * r - 0.419 * g - 0.081 * b + 128

    def subsample(plane):
        return plane.reshape(plane.shape[0] // 2, 2, plane.shape[1] // 2, 2).mean(axis=(1, 3))

    planes = [y, subsample(u), subsample(v)]
    return b"".join(np.clip(p, 0, 255).round().astype(np.uint8).tobytes() for p in planes)


def write_y4m(images: list[Path], path: Path, seconds_each: float = 2.0, fps: int = 10,
              size: tuple[int, int] = (320, 240)) -> Path:
    """Write ``images`` to ``path`` as a YUV4MPEG2 (4:2:0) video and return ``path``.

    Each image file is read with Pillow, converted to RGB and resized to ``size`` (width, height;
    both even), then shown for ``seconds_each`` at ``fps`` frames per second
    (``int(seconds_each * fps)`` identical frames).  Chromium loops the file.
    """
    width, height = size
    with open(path, "wb") as stream:
        stream.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image_path in images:
            frame = np.asarray(Image.open(image_path).convert("RGB").resize((width, height)))
            data = rgb_to_i420(frame)
            for _ in range(int(seconds_each * fps)):
                stream.write(b"FRAME\n" + data)
    return path
