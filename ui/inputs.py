"""Inputs that hand files to the library undecoded, and how errors reach the page."""

from __future__ import annotations

import base64
import binascii
import html
import logging
from typing import Callable, TypeVar

import gradio as gr

from rps.errors import RpsError
from rps.images import FORMATS_TEXT, MAX_FILE_BYTES, check_header, load_rgb

log = logging.getLogger("rps.app")
T = TypeVar("T")

# The webcam is asked for a small frame: the model needs 96 px, and small frames keep the
# upload per frame near 10 kB so the server never builds a backlog.
WEBCAM = gr.WebcamOptions(mirror=True, constraints={"video": {"width": {"ideal": 320}, "height": {"ideal": 240}}})
# A live frame larger than a 4K UHD webcam's (3840x2160) is dropped from its header, unread:
# each viewer's frames then cost at most 25 MB decoded, whatever a client sends.
LIVE_MAX_PIXELS = 3840 * 2160


def user_error(message: str) -> gr.Error:
    """A ``gr.Error`` whose text shows literally: Gradio renders error messages as HTML, and
    a message may quote a class or file name a user chose.  Only ``&``, ``<`` and ``>`` are
    escaped: quotes are plain text in HTML content, and escaped they reached API clients
    (``gradio_client``) as ``&#x27;``.  No traceback is logged: the message is the whole
    story."""
    return gr.Error(html.escape(message, quote=False), print_exception=False)


def unexpected_error(action: str, error: Exception) -> gr.Error:
    """For an exception the library did not anticipate: logged with its traceback for the
    operator, and a sentence for the user."""
    log.exception("%s failed", action)
    return user_error(f"{action} failed unexpectedly ({type(error).__name__}: {error}). The app "
                      "is still running: try again, and if it keeps failing, tell the operator.")


def calling(action: str, function: Callable[..., T], *args, **kwargs) -> T:
    """``function(*args, **kwargs)``, with a library error shown as its sentence and any other
    exception as ``unexpected_error(action, ...)``."""
    try:
        return function(*args, **kwargs)
    except RpsError as error:
        raise user_error(str(error)) from None
    except gr.Error:
        raise
    except Exception as error:
        raise unexpected_error(action, error) from None


def raw_image(payload) -> str | bytes | None:
    """The file a ``gr.Image`` payload carries, undecoded: a path, or the bytes of a data URL
    (webcam frames and pasted images arrive so)."""
    if payload is None:
        return None
    url = getattr(payload, "url", None) or ""
    if url.startswith("data:"):
        if len(url) > MAX_FILE_BYTES * 4 // 3 + 1024:  # base64 of the largest file accepted, unread
            raise user_error(f"The image is larger than {MAX_FILE_BYTES // 2**20} MB; resize or compress it first.")
        try:
            return base64.b64decode(url.partition(",")[2], validate=False)
        except (binascii.Error, ValueError):
            raise user_error(f"That image could not be read (bad data URL). Upload {FORMATS_TEXT}.") from None
    path = getattr(payload, "path", None)
    if not path:
        raise user_error(f"No image arrived. Upload {FORMATS_TEXT}.")
    return str(path)


def _undecoded_photo(payload):
    """A photo input's file, checked from its header only (see ``PhotoInput``)."""
    raw = raw_image(payload)
    if raw is None:
        return None
    try:
        check_header(raw)
    except RpsError as error:
        raise user_error(str(error).replace(str(raw), "The upload") if isinstance(raw, str)
                         else str(error)) from None
    return raw


def _bounded_frame(payload):
    """A webcam frame, decoded by the library, or None (see ``LiveFrameInput``)."""
    try:
        raw = raw_image(payload)
        if raw is None:
            return None
        width, height = check_header(raw)
        if width * height > LIVE_MAX_PIXELS:
            return None
        return load_rgb(raw)
    except (RpsError, gr.Error):
        return None


def _with_preprocess(component: gr.Image, preprocess) -> gr.Image:
    # The instance's own preprocess replaces gr.Image's decoding.  Not a subclass: Gradio
    # writes a stub file (.pyi) beside the module of every component subclass on import.
    component.preprocess = preprocess
    return component


def PhotoInput(**options) -> gr.Image:  # noqa: N802 - named like the component it makes
    """``gr.Image`` that hands the uploaded file itself to the library.

    ``gr.Image`` opens, and may convert, an upload before any handler runs; here the file (a
    path, or the bytes of a pasted image or webcam snapshot) goes to ``rps.images`` untouched,
    after a header check that refuses what is not an image, or too large, with a sentence.  So
    the app decodes it exactly as ``Predictor`` and ``python -m rps predict`` do.
    """
    return _with_preprocess(gr.Image(**options), _undecoded_photo)


def LiveFrameInput(**options) -> gr.Image:  # noqa: N802
    """A webcam stream's frames: each is measured from its header and dropped (``None``) when
    over ``LIVE_MAX_PIXELS`` or unreadable, before it is decoded, then decoded as an (H, W, 3)
    uint8 RGB array by ``rps.images`` like every other door.  One bad frame never ends a stream."""
    return _with_preprocess(gr.Image(**options), _bounded_frame)
