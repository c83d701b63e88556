"""The app's speed as a user meets it, on loopback with the shipped model.

1. ``/classify`` round trip through ``gradio_client`` (upload, queue, inference, response):
   p50 and p95 over ``--requests`` calls, one at a time; with the default client, with
   ``ssl_verify=False``, and over the plain HTTP API for what the server itself takes.
2. Live: labelled frames per second in headless Chromium fed a fake webcam (Debian's
   ``/usr/bin/chromium``), read from the page for ``--seconds``.

    python -m bench.app_speed [--requests 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, launched_app, machine, p50_p95, save_results


def classify_latency(url: str, requests: int, ssl_verify: bool = True) -> dict:
    """``ssl_verify=False`` skips loading the CA bundle that gradio_client's httpx calls
    otherwise load on every request (two per call); loopback HTTP has no TLS to verify."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, ssl_verify=ssl_verify)
    examples = sorted((ROOT / "assets" / "examples").glob("*.png"))
    for example in examples:
        client.predict(handle_file(str(example)), api_name="/classify")
    timings = []
    for index in range(requests):
        started = time.perf_counter()
        client.predict(handle_file(str(examples[index % len(examples)])), api_name="/classify")
        timings.append((time.perf_counter() - started) * 1000)
    p50, p95 = p50_p95(timings)
    return {"requests": requests, "p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}


def http_latency(url: str, requests: int) -> dict:
    """The same request over Gradio's plain HTTP API: upload, call, read the event stream.

    gradio_client polls its message queues every 50 ms, several times per call; this shows what
    the server itself takes.
    """
    import httpx

    base = url.rstrip("/") + "/gradio_api"
    examples = sorted((ROOT / "assets" / "examples").glob("*.png"))
    timings = []
    with httpx.Client() as http:
        for index in range(requests + 5):
            example = examples[index % len(examples)]
            started = time.perf_counter()
            with open(example, "rb") as handle:
                uploaded = http.post(f"{base}/upload", files={"files": handle}).json()[0]
            # The photo, and "show where the model looked" off (the page's default).
            payload = {"data": [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}, False]}
            event = http.post(f"{base}/call/classify", json=payload).json()["event_id"]
            answer = http.get(f"{base}/call/classify/{event}").text
            assert "event: complete" in answer, answer[:200]
            if index >= 5:  # the first few warm up the connection
                timings.append((time.perf_counter() - started) * 1000)
    p50, p95 = p50_p95(timings)
    return {"requests": requests, "p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}


def camera_browser(playwright):
    """Headless Chromium whose fake webcam shows a rock, then scissors (Debian's chromium)."""
    from rps.video import write_y4m

    examples = ROOT / "assets" / "examples"
    video = write_y4m([examples / "rock-1.png", examples / "scissors-1.png"],
                      Path(tempfile.mkdtemp()) / "cam.y4m")
    return playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"])


def open_live(browser, url: str):
    """A new page on the Live tab, streaming its webcam."""
    page = browser.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Live").click()
    page.get_by_text("Click to Access Webcam").click()
    page.get_by_role("button", name="capture photo").click()
    return page


def read_live(page) -> tuple[float | None, str | None]:
    """(labelled frames per second shown, label shown), each None while the page shows none."""
    found = re.search(r"([\d.]+) labelled frames per second", page.locator("#fps").inner_text())
    heading = page.locator("#live-prediction h2")
    return (float(found.group(1)) if found else None,
            heading.first.inner_text().strip() if heading.count() else None)


def live_rate(url: str, seconds: float) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = camera_browser(playwright)
        page = open_live(browser, url)
        samples, labels = [], set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(1.0)
            rate, label = read_live(page)
            if rate is not None:
                samples.append(rate)
            if label:
                labels.add(label)
        browser.close()
    steady = samples[len(samples) // 3:] or [0.0]
    return {"seconds": seconds, "frames_per_second_median": round(statistics.median(steady), 1),
            "frames_per_second_min": round(min(steady), 1), "labels_seen": sorted(labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    with launched_app() as (url, _):
        payload = {"machine": machine(), "classify": classify_latency(url, args.requests),
                   "classify_no_ssl_verify": classify_latency(url, args.requests, ssl_verify=False),
                   "classify_http": http_latency(url, args.requests),
                   "live": live_rate(url, args.seconds)}
    save_results("app_speed", payload)
    print(payload["machine"])
    print(f"/classify round trip: p50 {payload['classify']['p50_ms']} ms, p95 {payload['classify']['p95_ms']} ms "
          f"over {args.requests} requests through gradio_client (goal p50 <= 100 ms)")
    print(f"/classify through gradio_client with ssl_verify=False: p50 {payload['classify_no_ssl_verify']['p50_ms']} ms, "
          f"p95 {payload['classify_no_ssl_verify']['p95_ms']} ms")
    print(f"/classify over the plain HTTP API: p50 {payload['classify_http']['p50_ms']} ms, "
          f"p95 {payload['classify_http']['p95_ms']} ms")
    print(f"live: {payload['live']['frames_per_second_median']} labelled frames/s median "
          f"(min {payload['live']['frames_per_second_min']}; goal >= 10), labels seen {payload['live']['labels_seen']}")


if __name__ == "__main__":
    main()
