"""Take it anywhere: each export format's size, latency per call and parity with Keras.

Exports the shipped model (``rps.export``) as TFLite float and int8, ONNX (when tf2onnx is
installed) and a SavedModel, runs each on the example images' prepared inputs (batch 1, the
hand's keypoints), and compares with Keras: the largest probability difference and whether
the top class agrees.  Latency is the median of 200 calls after 20 warm-up calls, one thread
of the runtime's choosing, on this machine; the Keras row is ``ModelRunner.run``, the path
the app serves.

    python -m bench.export

Writes ``bench/results/export.json``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import machine, save_results
from rps.export import EXAMPLES, ExportedRunner, ExportError, export_model, model_inputs
from rps.prediction import Predictor

CALLS, WARM_UP = 200, 20


def median_ms(call) -> float:
    for _ in range(WARM_UP):
        call()
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def main() -> None:
    predictor = Predictor()
    rows = model_inputs(predictor, EXAMPLES)
    pixels = np.zeros((1, predictor.bundle.image_size, predictor.bundle.image_size, 3), np.uint8)
    keras = [predictor.runner.run(pixels, row[-1])[0] for row in rows]
    results = {"Keras (ModelRunner)": {"bytes": (predictor.bundle.folder / "model.keras").stat().st_size,
                                       "ms_p50": median_ms(lambda: predictor.runner.run(pixels, rows[0][-1])),
                                       "max_difference": 0.0, "top1_equal": f"{len(rows)}/{len(rows)}"}}
    with tempfile.TemporaryDirectory() as scratch:
        for format, name in (("tflite", "model.tflite"), ("tflite-int8", "int8.tflite"), ("onnx", "model.onnx"),
                             ("saved_model", "saved")):
            try:
                exported = export_model(None, Path(scratch) / name, format)
            except ExportError as error:
                results[format] = {"skipped": str(error)}
                print(format, "skipped:", error)
                continue
            runner = ExportedRunner(exported.path)
            outputs = [runner.run(row) for row in rows]
            results[format] = {
                "bytes": exported.bytes,
                "ms_p50": median_ms(lambda: runner.run(rows[0])),
                "max_difference": float(max(np.abs(got - want).max() for got, want in zip(outputs, keras))),
                "top1_equal": f"{sum(int(np.argmax(got) == np.argmax(want)) for got, want in zip(outputs, keras))}"
                              f"/{len(rows)}",
            }
            print(format, results[format], flush=True)
    payload = {"machine": machine(), "inputs": "the 6 example images' keypoints, batch 1", "formats": results}
    print(f"saved {save_results('export', payload)}")


if __name__ == "__main__":
    main()
