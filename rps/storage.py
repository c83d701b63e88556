"""Files the server writes: its state folder, result images and downloadable archives."""

from __future__ import annotations

import atexit
import hashlib
import io
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)


def default_state_dir() -> Path:
    """``RPS_STATE_DIR``; else a Space's persistent storage (``/data``) when mounted and
    writable; else ``~/.cache/rps``."""
    if os.environ.get("RPS_STATE_DIR"):
        return Path(os.environ["RPS_STATE_DIR"])
    if Path("/data").is_dir() and os.access("/data", os.W_OK):
        return Path("/data/rps")
    return Path.home() / ".cache" / "rps"


def temporary_folder(prefix: str) -> Path:
    """A new folder under the system's temporary folder, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def writable_state_dir(wanted: Path) -> tuple[Path, str]:
    """``(wanted, "")`` when it can be created and written, else a temporary folder and a
    sentence saying so (the app still serves; runs and promotions then end with the process)."""
    try:
        wanted.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=wanted, prefix=".write-check-"):
            pass
        return wanted, ""
    except OSError as error:
        fallback = Path(tempfile.mkdtemp(prefix="rps-state-"))
        message = (f"The state folder {wanted} is not writable ({error.strerror or error}); trainings and "
                   f"promotions are kept in {fallback} until the server stops. Set RPS_STATE_DIR to a "
                   "writable folder.")
        log.warning(message)
        return fallback, message


class ImageFiles:
    """PNG files of result images, written atomically under their content's hash.

    Gradio writes an image a handler returns as an array to a file named by its content's
    hash, in place (``processing_utils.save_pil_to_cache``): when two visitors get the same
    image at once (the same example clicked), one request rewrites the file while the other's
    response streams it, and that download fails ("peer closed connection", 12 to 16% of
    requests with 32 clients, ``bench/load.py``).  A path returned instead is copied into
    Gradio's cache under a temporary name and renamed, which is atomic; so handlers return
    paths from here.  Files older than ``max_age_seconds`` are removed now and then.
    """

    def __init__(self, folder: Path | None = None, max_age_seconds: float = 300.0):
        if folder is None:
            folder = temporary_folder("rps-images-")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_age_seconds = max_age_seconds
        self._writes = 0

    def path(self, image: np.ndarray | None) -> str | None:
        """The file holding ``image`` (H, W, 3) uint8 RGB, or None for None."""
        if image is None:
            return None
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(image, np.uint8)).save(buffer, "PNG")
        data = buffer.getvalue()
        target = self.folder / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
        try:
            os.utime(target)  # reused: fresh again, so no prune removes it before Gradio copies it
        except FileNotFoundError:
            handle, staging = tempfile.mkstemp(dir=self.folder, prefix=".partial-")
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.replace(staging, target)
        self._writes += 1
        if self._writes % 200 == 0:
            self.prune()
        return str(target)

    def prune(self) -> None:
        limit = time.time() - self.max_age_seconds
        for path in self.folder.iterdir():
            try:
                if path.stat().st_mtime < limit:
                    path.unlink()
            except OSError:
                pass


def zip_folder(folder: Path, downloads: Path, name: str | None = None) -> str:
    """``folder`` as ``downloads/<name or folder's name>.zip``, the only archive kept there.

    Written under another name and renamed when complete, so a full disk leaves no truncated
    archive to be served; raises ``OSError`` (the caller reports it).  ``downloads`` should be
    outside any folder the server refuses to serve; Gradio copies the archive into its cache
    unless ``downloads`` is under a static path (Teach's session folders: app.py).
    """
    shutil.rmtree(downloads, ignore_errors=True)
    downloads.mkdir(parents=True)
    name = name or folder.name
    staging = downloads / f".{name}.partial"
    try:
        written = shutil.make_archive(str(staging), "zip", root_dir=folder)
        return str(Path(written).replace(downloads / f"{name}.zip"))
    except BaseException:
        shutil.rmtree(downloads, ignore_errors=True)
        raise


def read_picture(path: Path) -> Image.Image | None:
    """An RGB copy of the picture at ``path`` (a run's curves or confusion matrix), or None
    when it is missing or unreadable: a page gets pixels, never a path into the state folder."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError):
        return None
