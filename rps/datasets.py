"""Find the labelled images in a folder or zip, whatever layout it uses.

Two layouts are understood:

* class folders: ``DIR/<class>/*.png`` (two classes or more), images directly in the class
  folder or one folder deeper (``DIR/rock/session1/IMG_0001.JPG``), any file names;
* the Kaggle layout of the study's dataset: ``DIR/train/<class>/``, ``DIR/test/<class>/`` and a
  ``DIR/validation/`` that is either class folders or one flat folder whose file names start
  with the class (``paper1.png``, ``rock-hires2.png``).  Flat files are labelled by name in
  memory; the user's files are never moved.

Class names are the sorted folder names, so the order is stable and is saved with the model.
Hidden files (``.DS_Store``), ``__MACOSX`` folders and ``Thumbs.db`` are ignored; extensions
are matched in any case (``IMG_0001.JPG``).
"""

from __future__ import annotations

import hashlib
import random
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from rps.archives import extract_zip
from rps.errors import UNREADABLE_HINT, DatasetError, ImageError
from rps.images import IMAGE_EXTENSIONS, check_header, is_image_file

_IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}
_SEQUENCE_FRAME = re.compile(r"[-_]\d+$")
_EXTENSIONS_TEXT = ", ".join(IMAGE_EXTENSIONS)

# How the validation split was chosen; recorded in a run's model.json.
SPLIT_FOLDER = "the dataset's validation folder"
SPLIT_SEQUENCES = "whole image sequences held out per class"
SPLIT_STRATIFIED = "a seeded random share of each class"


@dataclass(frozen=True)
class LabelledImages:
    """Image paths with integer labels indexing ``Dataset.class_names``."""

    paths: tuple[str, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self, class_count: int) -> list[int]:
        return [self.labels.count(index) for index in range(class_count)]


@dataclass(frozen=True)
class Dataset:
    """A dataset's classes and splits; ``validation`` and ``test`` may be absent."""

    root: Path
    class_names: tuple[str, ...]
    train: LabelledImages
    validation: LabelledImages | None = None
    test: LabelledImages | None = None

    def fingerprint(self) -> str:
        """A short hash of every file's relative path, size and label: identifies the data."""
        digest = hashlib.sha256()
        for split in (self.train, self.validation, self.test):
            if split is None:
                continue
            for path, label in zip(split.paths, split.labels):
                file = Path(path)
                relative = file.relative_to(self.root) if file.is_relative_to(self.root) else file
                # surrogateescape: file names that are not UTF-8 (Latin-1 zips) hash like any other
                line = f"{relative.as_posix()}|{file.stat().st_size}|{label}\n"
                digest.update(line.encode("utf-8", "surrogateescape"))
        return digest.hexdigest()[:16]

    def describe(self) -> str:
        """One line: the classes and each split's size, e.g. "classes paper, rock; train 18; a
        validation share is held out of train" (training holds one out when there is none)."""
        parts = [f"classes {', '.join(self.class_names)}"]
        for name in ("train", "validation", "test"):
            split = getattr(self, name)
            if split is not None:
                parts.append(f"{name} {len(split)}")
        if self.validation is None:
            parts.append("a validation share is held out of train")
        return "; ".join(parts)


def _visible_children(folder: Path) -> list[Path]:
    return sorted(
        child
        for child in folder.iterdir()
        if not child.name.startswith(".") and child.name not in _IGNORED_NAMES
    )


def _check_is_image(path: Path) -> None:
    """Read the header only: catches text renamed .png, and pixel bombs, without decoding.

    The file is named by its class folder and name: a zip's temporary folder means nothing
    to the user.
    """
    try:
        check_header(path)
    except ImageError as error:
        shown = f"{path.parent.name}/{path.name}"
        text = str(error)
        text = text.replace(path.name, shown, 1) if path.name in text else f"{shown}: {text}"
        raise DatasetError(f"{text} {UNREADABLE_HINT}") from None


def _images_in(folder: Path, verify: bool, depth: int = 0) -> list[Path]:
    """The images in a class folder, and in its subfolders one level down."""
    images = []
    for child in _visible_children(folder):
        if child.is_dir():
            if depth >= 1:
                raise DatasetError(
                    f"Unexpected folder {child}: images may sit in a class folder or one folder "
                    "below it, not deeper."
                )
            images.extend(_images_in(child, verify, depth + 1))
            continue
        if not is_image_file(child):
            raise DatasetError(f"{child} is not an image (expected {_EXTENSIONS_TEXT} files).")
        if verify:
            _check_is_image(child)
        images.append(child)
    return images


def _class_folders(folder: Path) -> list[Path]:
    return [child for child in _visible_children(folder) if child.is_dir()]


def read_class_folders(
    folder: Path, class_names: tuple[str, ...] | None = None, verify: bool = True
) -> tuple[tuple[str, ...], LabelledImages]:
    """Read ``folder/<class>/*`` and return (class names, images).

    With ``class_names`` given (from the training split), the folder must use the same classes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder.")
    subfolders = _class_folders(folder)
    stray_files = [child for child in _visible_children(folder) if child.is_file()]
    if not subfolders:
        raise DatasetError(
            f"{folder} has no class folders: expected DIR/<class>/*.png (for example "
            "DIR/rock, DIR/paper, DIR/scissors) or a Kaggle layout with DIR/train."
        )
    if stray_files and any(is_image_file(file) for file in stray_files):
        raise DatasetError(
            f"{folder} mixes loose images ({stray_files[0].name}) with class folders; "
            "put every image inside its class folder."
        )
    names = tuple(child.name for child in subfolders)
    if class_names is None:
        if len(names) < 2:
            raise DatasetError(
                f"{folder} has only one class ({names[0]}); a classifier needs at least two."
            )
        class_names = names
    elif set(names) - set(class_names):
        raise DatasetError(
            f"{folder} has classes {sorted(set(names) - set(class_names))} that the training "
            f"data lacks (training classes: {', '.join(class_names)})."
        )
    paths: list[str] = []
    labels: list[int] = []
    for subfolder in subfolders:
        images = _images_in(subfolder, verify)
        if not images and len(names) == len(class_names):
            raise DatasetError(f"The class folder {subfolder} is empty.")
        label = class_names.index(subfolder.name)
        paths.extend(str(image) for image in images)
        labels.extend([label] * len(images))
    return class_names, LabelledImages(tuple(paths), tuple(labels))


def label_from_file_name(name: str, class_names: tuple[str, ...]) -> int | None:
    """The class whose name starts the file name (longest match wins), or None."""
    stem = Path(name).stem.lower()
    matches = [
        index
        for index, class_name in enumerate(class_names)
        if stem.startswith(class_name.lower())
    ]
    return max(matches, key=lambda index: len(class_names[index]), default=None)


def read_flat_folder(
    folder: Path, class_names: tuple[str, ...], verify: bool = True
) -> LabelledImages:
    """Label a flat folder by file name, as the study sorted its validation images."""
    paths: list[str] = []
    labels: list[int] = []
    for image in _images_in(folder, verify):
        label = label_from_file_name(image.name, class_names)
        if label is None:
            raise DatasetError(
                f"Cannot tell the class of {image}: in a flat folder each file name must "
                f"start with a class name ({', '.join(class_names)})."
            )
        paths.append(str(image))
        labels.append(label)
    if not paths:
        raise DatasetError(f"The folder {folder} holds no images.")
    return LabelledImages(tuple(paths), tuple(labels))


def _read_split(folder: Path, class_names: tuple[str, ...], verify: bool) -> LabelledImages:
    if _class_folders(folder):
        return read_class_folders(folder, class_names, verify)[1]
    return read_flat_folder(folder, class_names, verify)


def find_root(folder: Path) -> Path:
    """Step into single wrapper folders (``archive/Rock-Paper-Scissors/train``)."""
    folder = Path(folder)
    for _ in range(4):
        children = _visible_children(folder)
        if any(child.name in ("train", "test") for child in children):
            return folder
        subfolders = [child for child in children if child.is_dir()]
        only_child = subfolders[0] if len(subfolders) == 1 else None
        # A wrapper holds one folder and nothing else; a lone class folder holds images.
        if only_child and not any(child.is_file() for child in children) and _class_folders(only_child):
            folder = only_child
            continue
        return folder
    return folder


def is_kaggle_layout(folder: Path) -> bool:
    return (Path(folder) / "train").is_dir()


def _unpack(archive: Path, unpack_to: Path | None) -> Path:
    """``archive`` (a .zip) unpacked into ``unpack_to``, or a new temporary folder when None."""
    target = Path(unpack_to) if unpack_to else Path(tempfile.mkdtemp(prefix="rps-data-"))
    return extract_zip(archive, target / "unpacked")


@contextmanager
def _named_by_the_archive(unpacked: Path, archive: Path) -> Iterator[None]:
    """Errors about a zip's contents name the zip (``data.zip/rock``), not the temporary
    folder it was unpacked into, which means nothing to the person who sent it."""
    try:
        yield
    except DatasetError as error:
        if str(unpacked) not in str(error):
            raise
        raise DatasetError(str(error).replace(str(unpacked), archive.name)) from None


def open_dataset(source: Path | str, unpack_to: Path | None = None, verify: bool = True) -> Dataset:
    """Open a class-folder or Kaggle-layout dataset from a folder or a ``.zip`` of one."""
    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source} does not exist.")
    if not source.is_file():
        return _open_folder(source, verify)
    if source.suffix.lower() != ".zip":
        raise DatasetError(f"{source} is a file; give a dataset folder or a .zip of one.")
    unpacked = _unpack(source, unpack_to)
    with _named_by_the_archive(unpacked, source):
        return _open_folder(unpacked, verify)


def _open_folder(source: Path, verify: bool) -> Dataset:
    root = find_root(source)
    if is_kaggle_layout(root):
        class_names, train = read_class_folders(root / "train", verify=verify)
        validation = test = None
        if (root / "validation").is_dir():
            validation = _read_split(root / "validation", class_names, verify)
        if (root / "test").is_dir():
            test = read_class_folders(root / "test", class_names, verify)[1]
        return Dataset(root, class_names, train, validation, test)
    class_names, train = read_class_folders(root, verify=verify)
    return Dataset(root, class_names, train)


def evaluation_split(source: Path | str, class_names: tuple[str, ...] | None = None,
                     unpack_to: Path | None = None) -> tuple[tuple[str, ...], LabelledImages]:
    """The images to evaluate on: a class-folder folder, or a Kaggle root's ``test/``, or a
    ``.zip`` of either (unpacked into ``unpack_to``, a new temporary folder when None, as
    ``open_dataset`` does).  Raises ``DatasetError`` for anything else."""
    source = Path(source)
    if not (source.is_file() and source.suffix.lower() == ".zip"):
        return _evaluation_images(source, class_names)
    unpacked = _unpack(source, unpack_to)
    with _named_by_the_archive(unpacked, source):
        return _evaluation_images(unpacked, class_names)


def _evaluation_images(source: Path, class_names: tuple[str, ...] | None) -> tuple[tuple[str, ...], LabelledImages]:
    if not source.is_dir():
        raise DatasetError(f"{source} is not a folder of labelled images or a .zip of one.")
    root = find_root(source)
    if is_kaggle_layout(root):
        if not (root / "test").is_dir():
            raise DatasetError(f"{root} is a Kaggle layout without a test/ folder to evaluate.")
        root = root / "test"
    found_names, images = read_class_folders(root, class_names)
    if not images:
        raise DatasetError(f"{root} holds no images.")
    return found_names, images


def sequence_id(path: str) -> str:
    """``rock01-012.png`` and ``rock01-013.png`` share the sequence ``rock01``."""
    return _SEQUENCE_FRAME.sub("", Path(path).stem)


def _subset(images: LabelledImages, chosen: list[int]) -> LabelledImages:
    return LabelledImages(tuple(images.paths[i] for i in chosen), tuple(images.labels[i] for i in chosen))


def _sequences(images: LabelledImages) -> dict[tuple[int, str], list[int]]:
    groups: dict[tuple[int, str], list[int]] = {}
    for index, (path, label) in enumerate(zip(images.paths, images.labels)):
        groups.setdefault((label, sequence_id(path)), []).append(index)
    return groups


def looks_like_sequences(images: LabelledImages) -> bool:
    """True for data named like the study's renders (``rock01-000.png``): every class holds two
    sequences or more, and most photos share a sequence with others.

    Phone names (``IMG_0001.JPG``: one "sequence" per class), ``rock_1.png`` and unique names
    (``photo (3).jpg``) are not sequences.
    """
    groups = _sequences(images)
    labels = set(images.labels)
    if not labels or any(sum(key[0] == label for key in groups) < 2 for label in labels):
        return False
    in_sequences = sum(len(members) for members in groups.values() if len(members) > 1)
    return in_sequences * 2 > len(images)


def split_for_validation(
    images: LabelledImages, fraction: float, seed: int
) -> tuple[LabelledImages, LabelledImages, str]:
    """(train, validation, how) for data without a validation folder.

    Rendered sequences are held out whole (``split_by_sequence``); anything else gets a seeded
    stratified split (``split_stratified``).  ``how`` is ``SPLIT_SEQUENCES`` or
    ``SPLIT_STRATIFIED``.
    """
    if looks_like_sequences(images):
        return (*split_by_sequence(images, fraction, seed), SPLIT_SEQUENCES)
    return (*split_stratified(images, fraction, seed), SPLIT_STRATIFIED)


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"The validation fraction must be between 0 and 1, got {fraction}.")


def split_stratified(
    images: LabelledImages, fraction: float, seed: int
) -> tuple[LabelledImages, LabelledImages]:
    """Hold out ``fraction`` of each class (at least one photo, never a class's last one),
    chosen by a generator seeded with ``seed``; file order does not matter."""
    rng = random.Random(seed)

    def draw(members: list[int], count: int) -> list[int]:
        rng.shuffle(members)
        return members[:count]

    return _split_each_class(images, fraction, draw)


def split_latest(images: LabelledImages, fraction: float) -> tuple[LabelledImages, LabelledImages]:
    """Hold out the last ``fraction`` of each class in file-name order (at least one photo,
    never a class's last one).

    For samples taken in sequence (a webcam held on a pose; Teach names them by capture time),
    neighbouring frames are near copies: a random split puts copies of fit frames among the
    held-out ones and scores them.  Holding out the latest stretch scores frames the model has
    no copy of, as its next frames will be.
    """
    return _split_each_class(images, fraction, lambda members, count: members[len(members) - count:])


def _split_each_class(images: LabelledImages, fraction: float,
                      choose: Callable[[list[int], int], list[int]]) -> tuple[LabelledImages, LabelledImages]:
    """Hold out ``choose(members, count)`` of each class: its indices in file-name order, and
    ``fraction`` of them (at least one, never the class's last one)."""
    _check_fraction(fraction)
    held_out: set[int] = set()
    for label in sorted(set(images.labels)):
        members = sorted((i for i, value in enumerate(images.labels) if value == label),
                         key=lambda i: images.paths[i])
        held_out.update(choose(members, min(len(members) - 1, max(1, round(fraction * len(members))))))
    return (_subset(images, [i for i in range(len(images)) if i not in held_out]),
            _subset(images, sorted(held_out)))


def split_by_sequence(
    images: LabelledImages, fraction: float, seed: int
) -> tuple[LabelledImages, LabelledImages]:
    """Hold out whole rendered sequences per class, so near-copies never straddle the split."""
    _check_fraction(fraction)
    groups = _sequences(images)
    rng = random.Random(seed)
    held_out: set[int] = set()
    for label in sorted(set(images.labels)):
        keys = sorted(key for key in groups if key[0] == label)
        if len(keys) < 2:
            raise DatasetError(
                "Cannot hold out validation data without leaking: a class has a single "
                "image sequence. Add a validation/ folder to the dataset."
            )
        rng.shuffle(keys)
        target = fraction * sum(len(groups[key]) for key in keys)
        taken = 0
        for key in keys[:-1]:  # always keep at least one sequence for training
            if taken >= target:
                break
            held_out.update(groups[key])
            taken += len(groups[key])
    return (_subset(images, [i for i in range(len(images)) if i not in held_out]),
            _subset(images, [i for i in range(len(images)) if i in held_out]))


def merge_datasets(datasets: list[Dataset]) -> Dataset:
    """One dataset from several with the same classes: splits concatenated, first root kept.

    The shipped model trains on the study's dataset and ``rps-real-train`` together; a class
    missing from one source is fine, a class unknown to the first is not.
    """
    if not datasets:
        raise DatasetError("No dataset was given.")
    first = datasets[0]
    if len(datasets) == 1:
        return first
    names = first.class_names
    for other in datasets[1:]:
        if set(other.class_names) - set(names):
            raise DatasetError(
                f"{other.root} has classes {sorted(set(other.class_names) - set(names))} that "
                f"{first.root} lacks; datasets trained together need the same classes."
            )

    def joined(split_name: str) -> LabelledImages | None:
        paths: list[str] = []
        labels: list[int] = []
        for dataset in datasets:
            split = getattr(dataset, split_name)
            if split is None:
                continue
            paths.extend(split.paths)
            labels.extend(names.index(dataset.class_names[label]) for label in split.labels)
        return LabelledImages(tuple(paths), tuple(labels)) if paths else None

    return Dataset(first.root, names, joined("train"), joined("validation"), joined("test"))
