"""The training memory estimate (``rps.memory``) against measured peaks.

Each configuration trains one epoch in a fresh process on 600 synthetic 300x300 photos of three
classes (written once to a temporary folder) and reports the child's peak resident memory
beside ``estimate_training_bytes``.  The estimate should be above the measured peak (a
server refuses before it is killed) and not wildly so.

    python -m bench.train_memory

Writes ``bench/results/train_memory.json``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.common import ROOT, machine, save_results

CONFIGS = [
    dict(architecture="baseline", image_size=64, batch_size=32),
    dict(architecture="compact", image_size=128, batch_size=64),
    dict(architecture="improved", image_size=224, batch_size=32),
    dict(architecture="regularised", image_size=300, batch_size=32),
]

CHILD = """
from rps.config import TrainConfig
from rps.datasets import open_dataset
from rps.training import train
config = TrainConfig(input="image", epochs=1, augmentation="none", **{config!r})
train(open_dataset({data!r}), config, {out!r}, verbose=0)
"""


def write_photos(root: Path, per_class: int = 200) -> Path:
    rng = np.random.default_rng(0)
    for label in ("paper", "rock", "scissors"):
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            image = Image.new("RGB", (300, 300), tuple(int(v) for v in rng.integers(120, 255, 3)))
            ImageDraw.Draw(image).ellipse((50, 50, 250, 250), fill=tuple(int(v) for v in rng.integers(0, 120, 3)))
            image.save(root / label / f"{label}_{index}.png")
    return root


def main() -> None:
    from rps.config import TrainConfig
    from rps.memory import estimate_training_bytes

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        data = write_photos(Path(scratch) / "data")
        for index, values in enumerate(CONFIGS):
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            script = CHILD.format(config=values, data=str(data), out=f"{scratch}/run{index}")
            # ``python -c`` imports from its working directory first: the repository root.
            subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, cwd=ROOT)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far
            config = TrainConfig(input="image", epochs=1, augmentation="none", **values)
            estimate = estimate_training_bytes(config, 3, 600)
            row = {**values, "measured_peak_mb": round(peak / 1024), "estimate_mb": round(estimate / 2**20),
                   "note": "" if peak > before else "peak not above an earlier configuration's"}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"saved {save_results('train_memory', {'machine': machine(), 'rows': rows})}")


if __name__ == "__main__":
    main()
