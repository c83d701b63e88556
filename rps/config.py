"""The training configuration: one frozen dataclass whose defaults, with ``members=3``, train the
shipped model (``assets/MODEL_CARD.md`` gives the command)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from rps.errors import ConfigError
from rps.names import ARCHITECTURE_NAMES, AUGMENTATIONS, INPUT_MODES, SCHEDULES  # noqa: F401 - re-exported


@dataclass(frozen=True)
class TrainConfig:
    # The compact regularised CNN on the aligned hand crop, joined with the hand's keypoints:
    # the room around the hand no longer decides (docs/hands-first.md).
    architecture: str = "hand"
    # "hand": find the hand, train and serve on its aligned crop and keypoints; "image": the
    # whole photo, for models trained before the hand pipeline or gestures that are not hands.
    input: str = "hand"
    # 64 px still shows five fingers, and a 2-core CPU trains an epoch in under half a minute.
    image_size: int = 64
    # 32 is the study's batch size and fits any machine.
    batch_size: int = 32
    # The robust augmentation needs many epochs: at 32 the model still underfits its augmented
    # data, and 40 beat 32 over eight seeds on small hands and plain backdrops (docs/whole-photo-model.md, "Forty
    # epochs").  40 epochs take about 6 minutes on 2 cores of an AVX-512 EPYC; an older
    # 2-core machine ran 19 to 23 s per epoch for the four-block model, which puts 40 epochs
    # of the five-block one at 14 to 17 minutes there (an estimate).
    epochs: int = 40
    # None means the architecture's own rate (the study's, for its three models).
    learning_rate: float | None = None
    # Cosine decay to zero over the run: large steps early, a settled model at the end.
    schedule: str = "cosine"
    # "hand" jitters the keypoints (rotation, scale, shift, mirror, finger spread) and varies
    # what rooms change (backdrop, light, colour, blur) on aligned crops for models that read
    # them; "none" turns both off; "robust" is the whole-photo recipe; "study" the study's.
    augmentation: str = "hand"
    # EarlyStopping patience on val_loss (0: off).  Off for the shipped model: the cosine
    # schedule settles the weights by the last epoch, and the 33-image validation folder is
    # too small for its loss to pick an epoch.  The study's setting is 3.
    patience: int = 0
    # Used only when the data has no validation folder: whole sequences are held out of data
    # named like rendered sequences, a stratified share of each class otherwise.
    validation_fraction: float = 0.15
    # False: a file that cannot be decoded stops the run before the first epoch, named.  True:
    # it is left out and listed in model.json (dataset.skipped_unreadable).
    skip_unreadable: bool = False
    # Models trained one after another (seeds seed, seed + 1, ...) and served as the average of
    # their probabilities (rps.architectures.average_ensemble); 1: one model.  The shipped
    # model averages 3: one run's seed moved the webcam-room score by a point (docs/hands-first.md).
    members: int = 1
    # Fixes the initial weights, shuffling and augmentation draws.  Runs still differ: training
    # is not repeatable bit for bit on a CPU, even on one machine (docs/hands-first.md).
    seed: int = 42
    # None: mixed precision exactly when a GPU trains (it halves memory traffic there).
    mixed_precision: bool | None = None
    # Devices for tf.distribute.MirroredStrategy; None picks every GPU, else the CPU.
    devices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURE_NAMES:
            raise ConfigError(
                f"Unknown architecture {self.architecture!r}; choose from {', '.join(ARCHITECTURE_NAMES)}."
            )
        if self.augmentation not in AUGMENTATIONS:
            raise ConfigError(
                f"Unknown augmentation {self.augmentation!r}; choose from {', '.join(AUGMENTATIONS)}."
            )
        if self.input not in INPUT_MODES:
            raise ConfigError(f"Unknown input {self.input!r}; choose from {', '.join(INPUT_MODES)}.")
        if self.architecture == "hand" and self.input != "hand":
            raise ConfigError("The 'hand' architecture takes hand keypoints: it needs input 'hand'.")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"Unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}.")
        _check_range("epochs", self.epochs, 1, 1000)
        _check_range("batch_size", self.batch_size, 1, 1024)
        # Below 32 px the three pooling stages leave nothing; above 512 px a CPU never finishes.
        _check_range("image_size", self.image_size, 32, 512)
        _check_range("patience", self.patience, 0, 1000)
        _check_range("members", self.members, 1, 10)
        if self.learning_rate is not None and not (0.0 < self.learning_rate <= 1.0):
            raise ConfigError(f"Learning rate must be above 0 and at most 1, got {self.learning_rate}.")
        if not isinstance(self.skip_unreadable, bool):
            raise ConfigError(f"Skip unreadable must be true or false, got {self.skip_unreadable!r}.")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(
                f"Validation fraction must be between 0 and 1, got {self.validation_fraction}."
            )

    def to_dict(self) -> dict:
        values = asdict(self)
        values["devices"] = list(self.devices) if self.devices else None
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {field.name for field in fields(cls)}
        values = {key: value for key, value in values.items() if key in known}
        if values.get("devices"):
            values["devices"] = tuple(values["devices"])
        return cls(**values)


def _check_range(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{_setting(name)} must be a whole number from {low} to {high}, got {value!r}.")


def _setting(name: str) -> str:
    """A setting's name as a person writes it ("image size"), for both the CLI and the app."""
    return name.replace("_", " ").capitalize()


def config_from_form(architecture: str, epochs, batch_size, learning_rate, image_size, augmentation: str,
                     input_mode: str = "hand", skip_unreadable: bool = False, members=1) -> TrainConfig:
    """A ``TrainConfig`` from a form's values, where numbers may arrive as floats (``3.0``) or
    empty.  An empty learning rate means the architecture's own; every value is then checked
    by ``TrainConfig`` (``ConfigError`` with a sentence)."""

    def whole(value):
        return int(value) if value is not None and float(value).is_integer() else value

    rate = None if learning_rate in (None, "") else float(learning_rate)
    return TrainConfig(
        architecture=architecture, epochs=whole(epochs), batch_size=whole(batch_size),
        learning_rate=rate, image_size=whole(image_size), augmentation=augmentation, input=input_mode,
        skip_unreadable=bool(skip_unreadable), members=whole(members if members is not None else 1),
    )
