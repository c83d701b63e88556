"""Load: many concurrent clients on /classify sending the same photo: alone, while a
training runs, and while 4 live viewers stream.

Each client is its own ``gradio_client.Client`` (its own session) sending **the same file**
(the first example image) for ``--seconds``: the case of visitors clicking the same example,
which once failed 12 to 16% of requests.  Every answer is checked (a label among the classes,
and the picture of the crop downloaded).  The live viewers each send a webcam-sized frame to
``/live`` ten times a second.  Reports answered requests, failures, throughput, p50/p95
latency and the process's peak resident memory (server and clients share this process, so
it is an upper bound for the server) per phase.  Loopback only.

    python -m bench.load [--clients 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from bench.common import ROOT, STUDY_DATA, launched_app, machine, p50_p95, peak_rss_mb, require, save_results

EXAMPLE = sorted((ROOT / "assets" / "examples").glob("*.png"))[0]


def live_viewers(url: str, viewers: int, stop: threading.Event, started: threading.Event) -> dict:
    """``viewers`` pages of one headless Chromium, each streaming a fake webcam (a rock, then
    scissors) on the Live tab until ``stop``; ``started`` is set once all stream.  Returns each
    page's last shown frames-per-second figure and the labels seen.  (gradio_client cannot
    call streaming endpoints, so the viewers are real browsers, as in ``app_speed.py``.)"""
    from bench.app_speed import camera_browser, open_live, read_live
    from playwright.sync_api import sync_playwright

    result = {"viewers": viewers, "frames_per_second": [], "labels_seen": set(), "errors": []}
    try:
        with sync_playwright() as playwright:
            browser = camera_browser(playwright)
            pages = [open_live(browser, url) for _ in range(viewers)]
            started.set()
            rates = [0.0] * viewers
            while not stop.is_set():
                time.sleep(2.0)
                for index, page in enumerate(pages):
                    rate, label = read_live(page)
                    if rate is not None:
                        rates[index] = rate
                    if label:
                        result["labels_seen"].add(label)
            result["frames_per_second"] = rates
            browser.close()
    except Exception as error:  # noqa: BLE001 - reported with the figures
        result["errors"].append(f"{type(error).__name__}: {error}"[:300])
        started.set()
    result["labels_seen"] = sorted(result["labels_seen"])
    return result


def run_clients(url: str, clients: int, seconds: float) -> dict:
    from gradio_client import Client, handle_file

    examples = [handle_file(str(EXAMPLE))]  # the same file from every client
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start_line = threading.Barrier(clients)

    def client_loop(index: int) -> None:
        try:
            # Loopback HTTP: without ssl_verify=False each request of each client would load the
            # CA bundle twice, on the same 2 cores as the server (see the README's /classify figure).
            client = Client(url, verbose=False, ssl_verify=False)
        except Exception as error:  # a refused connection is a failure to report, not a crash
            with lock:
                failures.append(f"connect: {error}")
            start_line.abort()
            return
        try:
            start_line.wait(timeout=120)
        except threading.BrokenBarrierError:
            pass
        deadline = time.monotonic() + seconds
        count = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                result, seen = client.predict(examples[(index + count) % len(examples)], api_name="/classify")
                assert result["label"] in ("paper", "rock", "scissors"), result
                assert Path(seen).stat().st_size > 0
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
            except Exception as error:
                with lock:
                    failures.append(f"{type(error).__name__}: {error}"[:200])
            count += 1

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    p50, p95 = p50_p95(latencies) if latencies else (None, None)
    return {
        "clients": clients, "seconds": seconds, "answered": len(latencies), "failures": len(failures),
        "failure_examples": sorted(set(failures))[:5],
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(p50, 1) if latencies else None,
        "p95_ms": round(p95, 1) if latencies else None,
        "peak_rss_mb_so_far": round(peak_rss_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    from rps.config import TrainConfig

    with launched_app(default_concurrency_limit=8, max_size=None) as (url, service):
        alone = run_clients(url, args.clients, args.seconds)
        print("alone", alone, flush=True)
        job = service.start_training(require(STUDY_DATA), TrainConfig(epochs=50))
        while job.progress().step == 0 and not job.done:
            time.sleep(0.5)
        training = run_clients(url, args.clients, args.seconds)
        training["training_status_during"] = job.status
        service.stop_training()
        print("during training", training, flush=True)
        while not job.done:
            time.sleep(0.5)
        stop, started, viewers = threading.Event(), threading.Event(), {}
        watcher = threading.Thread(target=lambda: viewers.update(live_viewers(url, 4, stop, started)))
        watcher.start()
        started.wait(300)
        live = run_clients(url, args.clients, args.seconds)
        stop.set()
        watcher.join()
        live["live_viewers"] = viewers
        print("with 4 live viewers", live, flush=True)
    payload = {"machine": machine(), "same_file": EXAMPLE.name, "alone": alone, "during_training": training,
               "with_4_live_viewers": live}
    save_results("load", payload)
    print(payload["machine"])
    print("| phase | clients | seconds | answered | failures | req/s | p50 ms | p95 ms |\n|---|---|---|---|---|---|---|---|")
    for phase, row in (("alone", alone), ("during training", training), ("with 4 live viewers", live)):
        print(f"| {phase} | {row['clients']} | {row['seconds']} | {row['answered']} | {row['failures']} | "
              f"{row['requests_per_second']} | {row['p50_ms']} | {row['p95_ms']} |")


if __name__ == "__main__":
    main()
