"""Why rps turns TensorFlow's oneDNN kernels on and XLA off when it trains on a CPU.

Each model trains a few steps on random 0-255 images, without a data pipeline, in a fresh
process per setting (TensorFlow reads the oneDNN switch when it loads), and the table gives
training images per second.  On the AMD EPYC this project is measured on, TensorFlow 2.21 leaves
oneDNN off and Keras 3 compiles with XLA ("auto"): the first row.

    python -m experiments.cpu_kernels [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.common import ROOT, machine, save_results
from experiments import RESULTS

MODELS = [("baseline", 300), ("regularised", 300), ("compact", 64)]
# (label, TF_ENABLE_ONEDNN_OPTS, Keras jit_compile)
SETTINGS = [
    ("TensorFlow's defaults here: oneDNN off, XLA", "0", "auto"),
    ("oneDNN off, no XLA", "0", "off"),
    ("oneDNN on, XLA", "1", "auto"),
    ("oneDNN on, no XLA (what rps uses)", "1", "off"),
]


def child(architecture: str, size: int, jit: str, steps: int) -> None:
    """Runs in the fresh process: print one JSON line with the training rate."""
    import numpy as np

    from rps.architectures import build_model, make_optimizer

    model = build_model(architecture, size, 3)
    model.compile(optimizer=make_optimizer(architecture), loss="sparse_categorical_crossentropy",
                  jit_compile="auto" if jit == "auto" else False)
    random = np.random.default_rng(0)
    images = random.integers(0, 256, (32, size, size, 3)).astype("float32")
    labels = random.integers(0, 3, 32)
    for _ in range(2):  # trace and compile before timing
        model.train_on_batch(images, labels)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    print(json.dumps({"images_per_second": round(steps * 32 / (time.perf_counter() - started), 1)}))


def measure(architecture: str, size: int, onednn: str, jit: str, steps: int) -> float:
    environment = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "experiments.cpu_kernels", "--child", architecture, str(size), jit,
               "--steps", str(steps)]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])["images_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--child", nargs=3, metavar=("ARCH", "SIZE", "JIT"))
    args = parser.parse_args()
    if args.child:
        architecture, size, jit = args.child
        child(architecture, int(size), jit, args.steps)
        return
    rows = []
    for label, onednn, jit in SETTINGS:
        rates = {f"{arch} {size}": measure(arch, size, onednn, jit, args.steps) for arch, size in MODELS}
        rows.append({"setting": label, "images_per_second": rates})
        print(rows[-1], flush=True)
    save_results("cpu_kernels", {"machine": machine(), "steps": args.steps, "rows": rows}, RESULTS)
    header = " | ".join(f"{arch} {size}" for arch, size in MODELS)
    print(f"\n| setting | {header} |\n|---|" + "---|" * len(MODELS))
    for row in rows:
        print(f"| {row['setting']} | " + " | ".join(f"{rate}" for rate in row["images_per_second"].values()) + " |")


if __name__ == "__main__":
    main()
