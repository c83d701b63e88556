"""Peak server memory under each attack of RELIABILITY.md's table (goal: under 3 GB).

The app runs in this process on loopback with a 3 GB training budget (``RPS_MAX_TRAIN_MEMORY``),
serving the shipped model.  Before each attack the process's peak resident memory is reset
(``/proc/self/clear_refs``, Linux); after it, the peak is read (``VmHWM``) with what the server
answered.  Uploads go through the HTTP API as a browser's would (three at once); a webcam
frame goes through ``ui.inputs.LiveFrameInput``, the code the server runs on each streamed frame
(``gradio_client`` cannot call streaming endpoints).

    python -m bench.attacks

Writes ``bench/results/attacks.json``.
"""

from __future__ import annotations

import base64
import tempfile
import threading
import time
from pathlib import Path

from bench.common import ROOT, machine, save_results

CASES = ROOT / "tests" / "data" / "cases"


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def classify_upload(base: str, path: Path) -> str:
    import httpx

    with httpx.Client(timeout=120) as http:
        with open(path, "rb") as handle:
            uploaded = http.post(f"{base}/upload", files={"files": (path.name, handle)}).json()[0]
        payload = {"data": [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}]}
        event = http.post(f"{base}/call/classify", json=payload).json()["event_id"]
        answer = http.get(f"{base}/call/classify/{event}").text
    return answer.strip().splitlines()[-1][:160]


def three_at_once(function, *args) -> list[str]:
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(function(*args))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def main() -> None:
    import app
    from gradio.data_classes import ImageData
    from rps.config import TrainConfig
    from rps.errors import RpsError
    from rps.service import ModelService

    state = Path(tempfile.mkdtemp(prefix="rps-attacks-"))
    service = ModelService(state, environ={"RPS_MAX_TRAIN_MEMORY": "3G"})
    demo = app.create_app(service, state_dir=state)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True,
                        blocked_paths=[str(state)])
    base = demo.local_url.rstrip("/") + "/gradio_api"
    rows = {}

    def measure(name: str, attack) -> None:
        reset_peak()
        started = time.monotonic()
        try:
            outcome = attack()
        except RpsError as error:
            outcome = f"refused: {error}"
        rows[name] = {"peak_rss_mb": round(peak_mb()), "seconds": round(time.monotonic() - started, 2),
                      "outcome": str(outcome)[:300]}
        print(name, rows[name], flush=True)

    try:
        measure("idle (the served model loaded)", lambda: "nothing sent")
        measure("3 x 13000x13000 RGB PNG (536 kB) uploaded to Classify at once",
                lambda: three_at_once(classify_upload, base, CASES / "rgb-13000x13000.png"))
        measure("3 x 13000x13000 palette PNG (198 kB) uploaded to Classify at once",
                lambda: three_at_once(classify_upload, base, CASES / "pal-13000x13000.png"))
        frame = ImageData(url="data:image/png;base64,"
                          + base64.b64encode((CASES / "rgb-13000x13000.png").read_bytes()).decode())
        from ui.inputs import LiveFrameInput

        live = LiveFrameInput(sources=["webcam"], streaming=True, type="numpy")
        measure("3 x 13000x13000 PNG as Live webcam frames",
                lambda: [live.preprocess(frame) for _ in range(3)])
        measure("a training of improved at 512 px, batch 64 (budget 3 GB)",
                lambda: service.start_training(
                    ROOT / "tests" / "data" / "cases" / "z13-phone-names.zip",
                    TrainConfig(architecture="improved", input="image", image_size=512, batch_size=64)))
        measure("a zip whose PNG headers claim 60000x60000",
                lambda: service.start_training(CASES / "z29-header-bomb-60000px.zip",
                                               TrainConfig(architecture="baseline", input="image")))
        measure("a normal photo afterwards", lambda: classify_upload(base, ROOT / "assets" / "examples" / "rock-1.png"))
    finally:
        demo.close()
    payload = {"machine": machine(), "training_budget": "3G", "attacks": rows}
    print(f"saved {save_results('attacks', payload)}")


if __name__ == "__main__":
    main()
