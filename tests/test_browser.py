"""End to end in headless Chromium: upload, live webcam (a fake camera), training curves.

Chromium is Debian's (``/usr/bin/chromium``); Playwright drives it.  Screenshots are saved in
``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from conftest import running_app, write_kaggle_layout, zip_folder
from rps.video import write_y4m
from ui.train import POLL_SECONDS

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
ARTIFACTS = ROOT / "test-artifacts"

if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real app with the shipped model, on loopback."""
    from rps.service import ModelService

    state = tmp_path_factory.mktemp("browser-state")
    with running_app(ModelService(state), state) as demo:
        yield demo.local_url


@pytest.fixture(scope="module")
def camera_video(tmp_path_factory) -> Path:
    """A fake webcam: a rock for three seconds, then scissors, then an empty room, looping."""
    from PIL import Image

    from test_hands import room

    folder = tmp_path_factory.mktemp("camera")
    Image.fromarray(room(7)).save(folder / "room.png")
    return write_y4m([EXAMPLES / "rock-1.png", EXAMPLES / "scissors-1.png", folder / "room.png"],
                     folder / "hands.y4m", seconds_each=3.0)


@pytest.fixture(scope="module")
def playwright():
    with playwright_api.sync_playwright() as playwright:
        yield playwright


def launch_with_camera(playwright, video: Path):
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--no-first-run",
              "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"],
    )


@pytest.fixture(scope="module")
def browser(playwright, camera_video):
    browser = launch_with_camera(playwright, camera_video)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def page(browser, server, request):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server)
    page.wait_for_selector("#photo", timeout=30_000)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    page.close()


def start_camera(page, element_id: str) -> None:
    """Allow the (fake) camera of the webcam component ``element_id`` and start streaming."""
    camera = page.locator(f"#{element_id}")
    camera.get_by_text("Click to Access Webcam").click()
    camera.get_by_role("button", name="capture photo").click()


def label_text(page, element_id: str) -> str:
    locator = page.locator(f"#{element_id} h2")
    return locator.first.inner_text().strip() if locator.count() else ""


def wait_for(predicate, seconds: float, interval: float = 0.25):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def test_upload_an_image_and_read_the_label(page):
    page.locator("#explain input[type=checkbox]").check()  # and see where the model looked
    page.locator("#photo input[type=file]").set_input_files(str(EXAMPLES / "scissors-1.png"))
    assert wait_for(lambda: label_text(page, "prediction") == "scissors", 30), label_text(page, "prediction")
    page.wait_for_timeout(1500)  # the crop and its Grad-CAM arrive with the label; the screenshot shows them


def test_live_webcam_label_follows_the_hand(page):
    page.get_by_role("tab", name="Live").click()
    start_camera(page, "live-camera")
    seen = set()
    deadline = time.monotonic() + 30
    expected = {"rock", "scissors", "no hand"}
    while time.monotonic() < deadline and not expected <= seen:
        text = label_text(page, "live-prediction")
        if text:
            seen.add("no hand" if text.startswith("No hand found") else text)
        if text == "scissors":
            page.screenshot(path=str(ARTIFACTS / "live.png"))
        time.sleep(0.2)
    assert expected <= seen, seen
    found = wait_for(lambda: re.search(r"([\d.]+) labelled frames per second", page.locator("#fps").inner_text()), 5)
    # The counter works; how fast it runs is a figure of bench/app_speed.py, not of this machine.
    assert found and float(found.group(1)) > 0, page.locator("#fps").inner_text()


@pytest.fixture
def slow_epochs(monkeypatch):
    """Each epoch outlasts the app's poll interval, so every epoch reaches the page on any machine.

    A tiny training on a fast processor otherwise ends its epochs between two polls, and the
    page only ever shows the last one.
    """
    from rps.callbacks import ProgressRecorder

    record = ProgressRecorder.on_epoch_end

    def record_slowly(self, epoch, logs=None):
        record(self, epoch, logs)
        time.sleep(POLL_SECONDS * 1.5)

    monkeypatch.setattr(ProgressRecorder, "on_epoch_end", record_slowly)


# Every text the progress line shows, caught as the page changes it rather than by sampling.
WATCH_PROGRESS = """() => {
    window.progressTexts = [];
    const target = document.querySelector('#train-progress');
    new MutationObserver(() => window.progressTexts.push(target.innerText))
        .observe(target, {childList: true, subtree: true, characterData: true});
}"""


def test_training_curves_grow_in_the_browser(page, tmp_path, slow_epochs):
    archive = zip_folder(write_kaggle_layout(tmp_path / "data", per_class=9), tmp_path / "tiny.zip")
    page.get_by_role("tab", name="Train").click()
    page.locator("#dataset-zip input[type=file]").set_input_files(str(archive))
    page.get_by_label("Epochs", exact=True).fill("4")
    page.get_by_label("Batch size", exact=True).fill("8")
    page.get_by_label("Image size (pixels)").fill("32")
    for label, choice in (("Architecture", "baseline"), ("Augmentation", "none")):
        box = page.get_by_role("combobox", name=label)
        box.click()
        page.get_by_role("option", name=choice, exact=True).click()
    page.get_by_label("The whole photo").check()  # synthetic shapes are not hands
    time.sleep(1)
    page.evaluate(WATCH_PROGRESS)
    page.get_by_role("button", name="Start training").click()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if "test accuracy" in page.locator("#train-results").inner_text():
            break
        errors = page.locator(".toast-body")
        assert errors.count() == 0, errors.first.inner_text()
        time.sleep(0.5)
    assert "test accuracy" in page.locator("#train-results").inner_text()
    shown = page.evaluate("window.progressTexts")
    epochs_seen = {found.group(1) for text in shown if (found := re.search(r"epoch (\d+)/", text))}
    assert len(epochs_seen) >= 2, shown  # the progress moved through the epochs
    plot = page.locator("#loss-plot")
    assert plot.locator("canvas, svg").count() > 0
    ARTIFACTS.mkdir(exist_ok=True)
    plot.screenshot(path=str(ARTIFACTS / "loss-curve.png"))


def test_two_live_viewers_keep_their_own_labels(playwright, server, tmp_path):
    """Two browsers stream different hands at once; neither page ever shows the other's label."""
    hands = {"rock": EXAMPLES / "rock-1.png", "scissors": EXAMPLES / "scissors-1.png"}
    pages = {}
    for name, image in hands.items():
        video = write_y4m([image], tmp_path / f"{name}.y4m", seconds_each=2.0)
        page = launch_with_camera(playwright, video).new_page(viewport={"width": 1280, "height": 1000})
        page.goto(server)
        page.wait_for_selector("#photo", timeout=30_000)
        page.get_by_role("tab", name="Live").click()
        start_camera(page, "live-camera")
        pages[name] = page
    seen = {name: [] for name in pages}
    deadline = time.monotonic() + 20
    # Both streams run for the whole window; sample each page in turn.
    while time.monotonic() < deadline and min(len(labels) for labels in seen.values()) < 15:
        for name, page in pages.items():
            text = label_text(page, "live-prediction")
            if text:
                seen[name].append(text)
        time.sleep(0.2)
    rates = {}
    ARTIFACTS.mkdir(exist_ok=True)
    for name, page in pages.items():
        found = re.search(r"([\d.]+) labelled frames per second", page.locator("#fps").inner_text())
        rates[name] = float(found.group(1)) if found else 0.0
        page.screenshot(path=str(ARTIFACTS / f"two-viewers-{name}.png"), full_page=True)
        page.context.browser.close()
    assert min(rates.values()) >= 2.0, rates  # both streams were live at the same time
    for name, labels in seen.items():
        assert len(labels) >= 15, (name, labels)
        assert set(labels) == {name}, (name, labels)


def test_teach_two_gestures_from_the_webcam_and_see_them_in_live(playwright, server, tmp_path):
    """Capture frames for two classes from a fake webcam, train a personal model for a few
    seconds, and Live labels the camera with the personal classes; another visitor's page
    still gets the shared model."""
    video = write_y4m([EXAMPLES / "rock-1.png", EXAMPLES / "paper-1.png", EXAMPLES / "scissors-1.png"],
                      tmp_path / "hands.y4m", seconds_each=1.5)
    browser = launch_with_camera(playwright, video)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(server)
        page.wait_for_selector("#photo", timeout=30_000)
        page.get_by_role("tab", name="Teach").click()
        page.locator("#teach-classes textarea").fill("flat hand, my fist")
        page.locator("#teach-set-classes").click()
        counts = page.locator("#teach-counts")
        assert wait_for(lambda: "flat hand: 0" in counts.inner_text(), 15), counts.inner_text()
        start_camera(page, "teach-camera")
        for name in ("flat hand", "my fist"):
            page.locator("#teach-class").get_by_text(name, exact=True).click()
            page.locator("#teach-capture").hover()
            page.mouse.down()  # hold to capture
            assert wait_for(lambda: re.search(rf"{name}: ([6-9]|\d\d)", counts.inner_text()), 20), counts.inner_text()
            page.mouse.up()
            assert wait_for(lambda: not page.locator("#teach-capturing input").is_checked(), 5)

        def fists() -> int:
            return int(re.search(r"my fist: (\d+)", counts.inner_text()).group(1))

        for tap in (lambda: page.locator("#teach-capture").click(),  # a click, not a hold
                    lambda: (page.locator("#teach-capture").focus(), page.keyboard.press("Space"))):
            before = fists()
            tap()
            assert wait_for(lambda: fists() > before, 10), counts.inner_text()
            assert wait_for(lambda: not page.locator("#teach-capturing input").is_checked(), 5)
        page.screenshot(path=str(ARTIFACTS / "teach-samples.png"), full_page=True)
        page.locator("#teach-epochs input").fill("15")
        page.locator("#teach-train").click()
        results = page.locator("#teach-results")
        assert wait_for(lambda: "held back" in results.inner_text(), 90), page.locator("#teach-progress").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "teach-trained.png"), full_page=True)
        page.get_by_role("tab", name="Live").click()
        start_camera(page, "live-camera")
        personal = wait_for(lambda: label_text(page, "live-prediction") in {"flat hand", "my fist"}, 30)
        assert personal, label_text(page, "live-prediction")

        other = browser.new_page(viewport={"width": 1280, "height": 1000})  # another visitor
        other.goto(server)
        other.wait_for_selector("#photo", timeout=30_000)
        other.locator("#photo input[type=file]").set_input_files(str(EXAMPLES / "scissors-1.png"))
        assert wait_for(lambda: label_text(other, "prediction") == "scissors", 30), label_text(other, "prediction")
    finally:
        browser.close()


def test_teach_from_uploaded_photos_and_classify_with_the_personal_model(page, tmp_path):
    """Teach's other door: photos uploaded for two classes, a personal model fit on all of
    them once the latest are scored, and Classify answering with the personal classes.  Its
    screenshot is the README's picture of the Teach tab."""
    from conftest import hand_variant

    photos = {}
    for name, gesture in (("flat hand", "paper"), ("my fist", "rock")):
        (tmp_path / gesture).mkdir()
        photos[name] = []
        for seed in range(6):
            path = tmp_path / gesture / f"{gesture}-{seed}.png"
            hand_variant(gesture, seed).save(path)
            photos[name].append(str(path))
    unseen = tmp_path / "unseen-fist.png"
    hand_variant("rock", 41).save(unseen)
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.get_by_role("tab", name="Teach").click()
    page.locator("#teach-classes textarea").fill("flat hand, my fist")
    page.locator("#teach-set-classes").click()
    counts = page.locator("#teach-counts")
    assert wait_for(lambda: "flat hand: 0" in counts.inner_text(), 15), counts.inner_text()
    for name, paths in photos.items():
        page.locator("#teach-class").get_by_text(name, exact=True).click()
        page.locator("#teach-upload input[type=file]").set_input_files(paths)
        assert wait_for(lambda: f"{name}: 6" in counts.inner_text(), 30), counts.inner_text()
    page.locator("#teach-epochs input").fill("30")
    page.locator("#teach-train").click()
    results = page.locator("#teach-results")
    assert wait_for(lambda: "held back" in results.inner_text(), 120), page.locator("#teach-progress").inner_text()
    assert "fit again on all 12 of your samples" in results.inner_text(), results.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "teach-uploaded.png"), full_page=True)
    page.get_by_role("tab", name="Classify").click()
    page.locator("#photo input[type=file]").set_input_files(str(unseen))
    assert wait_for(lambda: label_text(page, "prediction") == "my fist", 30), label_text(page, "prediction")


def test_play_a_round_against_the_app(page):
    """The countdown runs, the fake camera's hand is read on "Shoot!", and the score updates."""
    page.get_by_role("tab", name="Play").click()
    start_camera(page, "play-camera")
    assert wait_for(lambda: label_text(page, "play-seen"), 30), "the camera never reached the app"
    result = page.locator("#play-result")
    for _ in range(3):  # the fake camera shows a room without a hand for a third of its loop
        page.locator("#play-round").click()
        assert wait_for(lambda: "You played" in result.inner_text() or "Couldn't see" in result.inner_text(), 20)
        if "You played" in result.inner_text():
            break
        time.sleep(1.0)
    assert "You played" in result.inner_text(), result.inner_text()
    score = page.locator("#play-score").inner_text()
    assert re.search(r"You \d · App \d · Draws \d", score), score
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "play.png"), full_page=True)
