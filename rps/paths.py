"""Where the files the library needs at run time live: the shipped model, the landmarker, and
the example photos.

In a checkout (and an editable install) they are the repository's ``assets/``; a wheel
(``pip install .``) installs the same files under ``<prefix>/share/rps/assets`` (see
``pyproject.toml``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent / "assets"
_INSTALLED = Path(sys.prefix) / "share" / "rps" / "assets"

ASSETS = _CHECKOUT if (_CHECKOUT / "model").is_dir() else _INSTALLED
