"""Who may train and change the served model: decided by the operator through the environment.

Locally, everyone may (it is your machine).  On a Hugging Face Space (``SPACE_ID`` is set),
training is off unless the owner sets ``RPS_TRAINING=on``; with ``RPS_ADMIN_TOKEN`` set as a
Space secret, only people who give that token may start a training or change the served model.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from rps.errors import NotAllowed


@dataclass(frozen=True)
class TrainingPolicy:
    enabled: bool
    admin_token: str | None = None
    # A public deployment (a Space): without an admin token, only the page that started a
    # training may stop it (``may_stop``); on your own machine every page is yours.
    shared: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "TrainingPolicy":
        setting = environ.get("RPS_TRAINING", "").strip().lower()
        on_space = bool(environ.get("SPACE_ID"))
        enabled = setting in ("on", "1", "true", "yes") or (not setting and not on_space)
        return cls(enabled, environ.get("RPS_ADMIN_TOKEN") or None, on_space)

    def describe(self) -> str:
        """One Markdown sentence for the Train tab."""
        if not self.enabled:
            return ("Training is **off** on this deployment (it costs the owner compute and blocks "
                    "other users). The owner can enable it with the `RPS_TRAINING=on` setting.")
        if self.admin_token:
            return "Training is **on for admins**: enter the admin token to start one."
        if self.shared:
            return ("Training is **on** for every visitor: anyone can start one and change the served "
                    "model (the owner can limit both to admins with the `RPS_ADMIN_TOKEN` secret). One "
                    "training runs at a time; only the page that started it can stop it.")
        return "Training is **on**. One training runs at a time for everyone."

    def check(self, token: str | None, action: str = "Training") -> None:
        """Raises ``NotAllowed`` unless training is on and ``token`` is the admin token (when one
        is set); compared in constant time.  ``action`` names what was asked in the sentence
        ("Training", "Changing the served model")."""
        if not self.enabled:
            raise NotAllowed(f"{action} is disabled on this deployment (RPS_TRAINING is off).")
        if self.admin_token and not hmac.compare_digest((token or "").encode(), self.admin_token.encode()):
            raise NotAllowed(f"{action} needs the admin token of this deployment: enter it in the Admin token "
                             "box of the Train tab (or of the Teach tab, for a personal model).")

    def may_stop(self, token: str | None, started_by: str | None, asking: str | None) -> None:
        """Raises ``NotAllowed`` unless the page ``asking`` (a session) may stop the training
        that ``started_by`` started: anyone allowed to train (``check``), and on a shared
        deployment without an admin token, only the page that started it."""
        self.check(token, "Stopping a training")
        if self.shared and not self.admin_token and started_by != asking:  # an unknown starter too
            raise NotAllowed("Only the page that started this training can stop it.")
