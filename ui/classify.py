"""The Classify tab (one photo) and the Live tab (the webcam, frame by frame)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, NamedTuple, Protocol

import gradio as gr

from rps.errors import RpsError
from rps.explain import Explainer
from rps.images import is_blank
from rps.paths import ASSETS
from rps.prediction import Prediction
from rps.reports import top_classes
from rps.storage import ImageFiles
from ui.inputs import WEBCAM, LiveFrameInput, PhotoInput, calling

log = logging.getLogger("rps.app")
EXAMPLES = sorted(str(path) for path in (ASSETS / "examples").glob("*.png"))
LIVE_FRAME_SECONDS = 0.1  # at most 10 frames per second per viewer
# Photos classified at once: one per CPU core (inference is CPU-bound).  With 8 at once on the
# 2-core machine, 50 clients left 4 live viewers 1.6 to 1.8 labelled frames a second each; with
# 2, they got 4.6 to 5.4, at 12% fewer photos a second when no one streams (RELIABILITY.md, Load).
CLASSIFY_CONCURRENCY = max(2, os.cpu_count() or 2)


class Classifier(Protocol):
    def classify(self, image) -> Prediction: ...


# The classifier for one visitor: the served model, or the visitor's own from the Teach tab.
ClassifierFor = Callable[[gr.Request | None], Classifier]


class Classified(NamedTuple):
    label: dict[str, float] | str | None  # the top classes, or why the photo was declined
    seen: Any  # the crop the model saw: a PNG path (with ImageFiles) or an RGB array; None if declined


class LiveUpdate(NamedTuple):
    label: Any
    seen: Any
    rate: Any  # "N labelled frames per second"
    recent: list[float]  # this viewer's last frame times (time.monotonic seconds)


_EXPLAINERS: dict[int, Explainer] = {}


def explainer_for(classifier: Classifier) -> Explainer | None:
    """The Grad-CAM explainer of the model ``classifier`` serves now (made once per model), or
    None for a classifier that does not say which model it serves."""
    predictor = getattr(classifier, "predictor", None)
    if predictor is None:
        return None
    explainer = _EXPLAINERS.get(id(predictor))
    if explainer is None or explainer.predictor is not predictor:
        if len(_EXPLAINERS) > 8:
            _EXPLAINERS.clear()
        explainer = _EXPLAINERS[id(predictor)] = Explainer(predictor)
    return explainer


def _answer(classifier: Classifier, image, explain: bool) -> tuple[Prediction, Any]:
    """The prediction and the picture to show: the crop seen, or with Grad-CAM over it."""
    explainer = explainer_for(classifier) if explain else None
    if explainer is not None:
        explanation = explainer.explain(image)
        return explanation.prediction, (explanation.overlay if explanation.overlay is not None
                                        else explanation.prediction.crop)
    prediction = classifier.classify(image)
    return prediction, prediction.crop


def classify_image(classifier: Classifier, image, files: ImageFiles | None = None,
                   explain: bool = False) -> Classified:
    """The label and the crop the model saw for one photo (a path, bytes or an RGB array);
    with ``explain``, the crop with the Grad-CAM heat map of the top class over it."""
    if image is None:
        return Classified(None, None)
    prediction, seen = calling("Classifying the photo", _answer, classifier, image, explain)
    return Classified(top_classes(prediction), files.path(seen) if files else seen)


def live_classify(classifier: Classifier, frame, recent, files: ImageFiles | None = None,
                  explain: bool = False) -> LiveUpdate:
    """One webcam frame: label, crop seen, frames per second achieved, this viewer's frame
    times.  A frame that cannot be classified changes nothing on the page."""
    recent = list(recent or [])[-19:]
    skip = LiveUpdate(gr.skip(), gr.skip(), gr.skip(), recent)
    # A camera starting up sends frames of one colour: skipped until a first frame is labelled.
    # After that, one means a covered lens or a plain wall, and the pipeline says so ("no hand",
    # "too dark") instead of the page keeping the last gesture.
    if frame is None or (is_blank(frame) and not recent):
        return skip
    try:
        prediction, seen = _answer(classifier, frame, explain)
    except RpsError:
        return skip  # one bad frame must not end the stream
    except Exception:
        log.exception("a live frame failed")
        return skip
    recent.append(time.monotonic())
    span = recent[-1] - recent[0]
    rate = (len(recent) - 1) / span if span > 0 else 0.0
    seen = files.path(seen) if files else seen
    return LiveUpdate(top_classes(prediction), seen, f"{rate:.1f} labelled frames per second", recent)


def build_classify_tab(classifier_for: ClassifierFor, files: ImageFiles) -> None:
    with gr.Tab("Classify"):
        with gr.Row():
            with gr.Column():
                # image_mode=None: the raw file reaches the library, which decodes it as every
                # other door does (Gradio would otherwise convert RGBA, grey or 16-bit first).
                photo = PhotoInput(type="filepath", image_mode=None, sources=["upload", "clipboard", "webcam"],
                                   label="Photo of a hand", height=320, elem_id="photo")
                if EXAMPLES:
                    gr.Examples(EXAMPLES, inputs=photo, label="Examples")
            with gr.Column():
                label = gr.Label(label="Prediction", elem_id="prediction")
                seen = gr.Image(label="The hand the model saw", interactive=False, height=200, elem_id="seen")
                # Off by default: Grad-CAM costs about 5 times a prediction, and with it on every
                # photo the server answered 4.1 requests a second instead of 28.8 (bench/load.py).
                explain = gr.Checkbox(False, label="Show where the model looked (Grad-CAM: red counted most)",
                                      elem_id="explain")

        def classify(path, show_heat_map: bool, request: gr.Request) -> Classified:
            return classify_image(classifier_for(request), path, files, show_heat_map)

        gr.on([photo.change, explain.change], classify, [photo, explain], [label, seen], api_name="classify",
              concurrency_limit=CLASSIFY_CONCURRENCY)


def build_live_tab(classifier_for: ClassifierFor, files: ImageFiles) -> None:
    with gr.Tab("Live"):
        gr.Markdown("Allow the camera, press record, and show your hand. The newest frame always wins.")
        with gr.Row():
            camera = LiveFrameInput(sources=["webcam"], streaming=True, webcam_options=WEBCAM, type="numpy",
                                    label="Webcam", height=300, elem_id="live-camera")
            with gr.Column():
                label = gr.Label(label="Live prediction", elem_id="live-prediction")
                seen = gr.Image(label="The hand the model saw", interactive=False, height=160, elem_id="live-seen")
                rate = gr.Markdown("", elem_id="fps")
                explain = gr.Checkbox(False, label="Show where the model looked (Grad-CAM; fewer frames per second)",
                                      elem_id="live-explain")
        recent = gr.State(None)

        def live(frame, history, show_heat_map: bool, request: gr.Request) -> LiveUpdate:
            return live_classify(classifier_for(request), frame, history, files, show_heat_map)

        camera.stream(live, [camera, recent, explain], [label, seen, rate, recent], api_name="live",
                      stream_every=LIVE_FRAME_SECONDS, time_limit=600, concurrency_limit=16, show_progress="hidden")
