"""The Model tab (what serves, its card and history, the ways back) and the promotion of a
finished run, which the Train and Teach tabs ask for."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NamedTuple

import gradio as gr

from rps.policy import TrainingPolicy
from rps.reports import model_card_body, model_summary, promotion_question, served_history
from rps.storage import read_picture
from ui.inputs import calling, user_error

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = ROOT / "assets" / "model"
SHIPPED_CARD = ROOT / "assets" / "MODEL_CARD.md"


class ModelView(NamedTuple):
    card: str  # Markdown: the model's summary, served history, and the shipped model's card
    curves: Any  # PIL image or None
    confusion: Any


class Promotion(NamedTuple):
    """The components of a "serve this model to everyone" control with its confirmation."""
    token: gr.Textbox
    run_id: gr.Textbox
    ask: gr.Button
    confirm_row: gr.Row
    question: gr.Markdown
    confirm: gr.Button
    cancel: gr.Button


def served_model_view(service) -> ModelView:
    folder = Path(service.served_folder())
    history = service.served_history() if hasattr(service, "served_history") else []
    # The card describes assets/model and nothing else.
    card = model_card_body(SHIPPED_CARD) if folder.resolve() == SHIPPED_MODEL.resolve() else ""
    text = model_summary(service.served_metadata()) + served_history(history) + ("\n\n---\n\n" + card if card else "")
    return ModelView(text, read_picture(folder / "curves.png"), read_picture(folder / "confusion.png"))


def change_served(service, policy: TrainingPolicy, token: str | None, action: Callable[[], Any],
                  done_text: str, doing: str = "Changing the served model") -> ModelView:
    """Run ``action`` (promote, previous, bundled) with the promotion permission; the Model
    tab's new view, or a sentence."""
    calling(doing, policy.check, token, doing)
    calling(doing, action)
    gr.Info(done_text)
    return served_model_view(service)


def admin_token_box(policy: TrainingPolicy) -> gr.Textbox:
    """The admin token field, shown only where the deployment has one."""
    return gr.Textbox(label="Admin token", type="password", visible=bool(policy.admin_token))


def promotion_controls(token: gr.Textbox, label: str = "Serve this model to everyone") -> Promotion:
    """Lay out the promotion controls in the current tab; ``token`` is the tab's admin token field."""
    with gr.Row():
        run_id = gr.Textbox(label="Finished run", interactive=False)
        ask = gr.Button(label, interactive=False)
    with gr.Row(visible=False) as confirm_row:
        question = gr.Markdown()
        confirm = gr.Button("Yes, serve it to every visitor", variant="stop")
        cancel = gr.Button("Cancel")
    return Promotion(token, run_id, ask, confirm_row, question, confirm, cancel)


def wire_promotion(service, policy: TrainingPolicy, controls: Promotion, model_view: list, api_name: str,
                   adopt: Callable[[str, gr.Request], str] | None = None) -> None:
    """Ask, then promote ``controls.run_id``'s run and refresh the Model tab.  ``adopt(shown,
    request)`` first turns what the controls show into a run id of the service (a visitor's
    personal model is copied into the service's runs)."""

    def ask_to_promote(run: str) -> tuple:
        if not run:
            raise user_error("Finish a training first.")
        return gr.update(visible=True), promotion_question(run, getattr(service, "job", None))

    def promote(token: str, run: str, request: gr.Request) -> ModelView:
        if not run:
            raise user_error("Finish a training first.")
        # The permission is checked before anything is copied (adopt) or served.
        return change_served(service, policy, token,
                             lambda: service.promote(adopt(run, request) if adopt else run),
                             "The new model now serves every visitor.", "Serving the new model")

    controls.ask.click(ask_to_promote, controls.run_id, [controls.confirm_row, controls.question], api_visibility="private")
    controls.cancel.click(lambda: gr.update(visible=False), None, controls.confirm_row, api_visibility="private")
    controls.confirm.click(promote, [controls.token, controls.run_id], model_view, api_name=api_name).then(
        lambda: gr.update(visible=False), None, controls.confirm_row, api_visibility="private")


def build_model_tab(service, policy: TrainingPolicy, token: gr.Textbox) -> list:
    """The Model tab; returns its outputs (card, curves, confusion) for others to refresh."""
    with gr.Tab("Model"):
        card = gr.Markdown()
        with gr.Row():
            serve_previous = gr.Button("Serve the previous model", interactive=policy.enabled)
            serve_bundled = gr.Button("Serve the bundled model", interactive=policy.enabled)
        with gr.Row():
            curves = gr.Image(label="Training curves", interactive=False)
            confusion = gr.Image(label="Confusion matrix", interactive=False)
    outputs = [card, curves, confusion]

    def going_back(action: Callable[[], Any], done_text: str) -> Callable[[str | None], ModelView]:
        def handler(token_text: str | None) -> ModelView:
            try:
                return change_served(service, policy, token_text, action, done_text)
            except gr.Error as error:
                # Nothing changed, so the tab stays as it is (its pictures too), with the reason.
                gr.Warning(error.message)
                return ModelView(gr.skip(), gr.skip(), gr.skip())
        return handler

    serve_previous.click(going_back(lambda: service.serve_previous(), "The previous model serves every visitor again."),
                         token, outputs, api_name="serve_previous")
    serve_bundled.click(going_back(lambda: service.serve_bundled(), "The bundled model serves every visitor again."),
                        token, outputs, api_name="serve_bundled")
    return outputs
