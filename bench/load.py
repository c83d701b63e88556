"""Load: many concurrent clients on /classify, first alone, then while a training runs.

Each client is its own ``gradio_client.Client`` (its own session) looping over the example
images for ``--seconds``; every answer is checked (a label among the classes).  Reports answered
requests, failures, throughput and p50/p95 latency for both phases.  Loopback only.

    python bench/load.py [--clients 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import threading
import time

from common import ROOT, STUDY_DATA, launched_app, machine, p50_p95, require, save_results


def run_clients(url: str, clients: int, seconds: float) -> dict:
    from gradio_client import Client, handle_file

    examples = [handle_file(str(p)) for p in sorted((ROOT / "assets" / "examples").glob("*.png"))]
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
                result = client.predict(examples[(index + count) % len(examples)], api_name="/classify")
                assert result["label"] in ("paper", "rock", "scissors"), result
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
    payload = {"machine": machine(), "alone": alone, "during_training": training}
    save_results("load", payload)
    print(payload["machine"])
    print("| phase | clients | seconds | answered | failures | req/s | p50 ms | p95 ms |\n|---|---|---|---|---|---|---|---|")
    for phase, row in (("alone", alone), ("during training", training)):
        print(f"| {phase} | {row['clients']} | {row['seconds']} | {row['answered']} | {row['failures']} | "
              f"{row['requests_per_second']} | {row['p50_ms']} | {row['p95_ms']} |")


if __name__ == "__main__":
    main()
