"""Silence the C++ start-up chatter of TensorFlow and MediaPipe, which bypasses ``sys.stderr``.

TensorFlow prints "could not find cuda drivers" on every CPU machine, MediaPipe's landmarker a
page of TFLite and LiteRT lines when it loads; the one line a user needs to read drowns.
``TF_CPP_MIN_LOG_LEVEL=0`` shows them all again.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator

_lock = threading.Lock()


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (process-wide: keep it short)."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") == "0":
        yield
        return
    with _lock:
        saved = os.dup(2)
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
