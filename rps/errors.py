"""Exceptions with messages a user can act on.

Every error the library raises on bad input derives from ``RpsError`` so the CLI and the app can
catch one type, print its message and keep going.  Each subclass also derives from the built-in
type a Python user would expect (``ValueError`` for bad data, ``RuntimeError`` for state).
"""


# What a message naming an unreadable photo of a dataset ends with, from any door: it names the
# commands and the tab that have the option, so no door points at an option it lacks.
UNREADABLE_HINT = ("Fix or remove the file (`rps train` and `rps finetune` leave unreadable files out with "
                   "--skip-unreadable, the Train tab with 'Skip unreadable files').")


class RpsError(Exception):
    """Base class: the message is meant for the end user, not a traceback reader."""


class DatasetError(RpsError, ValueError):
    """A dataset is missing, has the wrong layout, or holds files that are not images."""


class ImageError(RpsError, ValueError):
    """An input is not a decodable image, or is too large to decode safely."""


class ArchiveError(RpsError, ValueError):
    """A zip archive is unsafe (members outside the target, absurd expansion) or unreadable."""


class CredentialsError(RpsError, RuntimeError):
    """Kaggle credentials were not found where the kaggle package looks for them."""


class ConfigError(RpsError, ValueError):
    """A training setting is out of range."""


class ModelFileError(RpsError, ValueError):
    """A saved model is missing, corrupt, or lacks the metadata that describes it."""


class TrainingStopped(RpsError, RuntimeError):
    """A training run was stopped on request; nothing was saved where a model is expected."""


class TrainingBusyError(RpsError, RuntimeError):
    """A training is already running; only one may run at a time."""


class HandDetectorError(RpsError, RuntimeError):
    """The hand landmarker cannot run: mediapipe is missing or its model file is gone."""


class NotAllowed(RpsError, PermissionError):
    """The deployment's operator has not allowed this action (training off, a wrong admin token)."""
