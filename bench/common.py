"""Shared helpers for the benchmarks: where the data is, what machine ran, where results go.

Imported as ``bench.common``: run benchmarks as modules from the repository root
(``python -m bench.real_rooms``), which puts the root, and so ``rps``, ``app`` and ``bench``, on
the import path; ``experiments/`` imports it the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DATASETS = Path(os.environ.get("RPS_DATASETS", ROOT.parent / "shared" / "datasets"))
STUDY_DATA = DATASETS / "rock-paper-scissors" / "Rock-Paper-Scissors"
REAL_DEV = DATASETS / "rps-real-dev"
RESULTS = ROOT / "bench" / "results"


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import tensorflow as tf

    from rps.devices import describe_device

    return (f"{describe_device()}, {model or platform.processor()}, "
            f"TensorFlow {tf.__version__}, Python {platform.python_version()}")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save_results(name: str, payload: dict, folder: Path = RESULTS) -> Path:
    """Write ``payload`` as ``folder/name.json`` (default ``bench/results/``, whose summaries are committed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def require(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"error: {path} not found; set RPS_DATASETS to the folder holding the datasets.")
    return path


def model_sha256(folder: Path) -> str:
    """Fingerprint of a saved model's weights file: ties measured figures to the model measured."""
    import hashlib

    from rps.artifacts import MODEL_FILE

    return hashlib.sha256((folder / MODEL_FILE).read_bytes()).hexdigest()


def model_folders(description: str) -> list[Path]:
    """The ``MODEL_FOLDER ...`` arguments of a benchmark that scores models (default: the shipped one)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("models", type=Path, nargs="*", default=[ROOT / "assets" / "model"])
    return parser.parse_args().models


def p50_p95(timings: list[float]) -> tuple[float, float]:
    """Median and 95th percentile (the nearest rank at or below it) of unsorted timings."""
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[int(0.95 * len(ordered)) - 1]


@contextlib.contextmanager
def launched_app(**queue_options) -> Iterator[tuple[str, object]]:
    """The app serving the shipped model on loopback from a fresh state folder: (url, service)."""
    import app
    from rps.service import ModelService

    state = Path(tempfile.mkdtemp(prefix="rps-bench-"))
    service = ModelService(state)
    demo = app.create_app(service, state_dir=state)
    demo.queue(**queue_options).launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    try:
        yield demo.local_url, service
    finally:
        demo.close()
