"""rps.datasets: layouts, flat validation labelled by name, leak-free splits, clear errors."""

from __future__ import annotations

import shutil

import pytest

from conftest import CLASSES, draw_gesture, write_class_folders, zip_folder
from rps.datasets import (
    evaluation_split,
    label_from_file_name,
    open_dataset,
    sequence_id,
    split_by_sequence,
)
from rps.errors import ArchiveError, DatasetError


def test_class_folder_layout(class_folder_dataset):
    dataset = open_dataset(class_folder_dataset)
    assert dataset.class_names == CLASSES
    assert len(dataset.train) == 18
    assert dataset.validation is None and dataset.test is None
    assert dataset.train.counts(3) == [6, 6, 6]


def test_kaggle_layout_labels_flat_validation_by_name(kaggle_dataset):
    before = sorted(p.name for p in (kaggle_dataset / "validation").iterdir())
    dataset = open_dataset(kaggle_dataset)
    assert dataset.class_names == CLASSES
    assert len(dataset.test) == 9
    names = {p.split("/")[-1]: dataset.class_names[label]
             for p, label in zip(dataset.validation.paths, dataset.validation.labels)}
    assert names["rock-hires1.png"] == "rock"
    assert names["scissors2.png"] == "scissors"
    assert names["paper1.png"] == "paper"
    # Labelled in memory: the user's files are where they were.
    assert sorted(p.name for p in (kaggle_dataset / "validation").iterdir()) == before


@pytest.mark.parametrize("prefix", ["", "archive/Rock-Paper-Scissors/"])
def test_zip_of_kaggle_layout(kaggle_dataset, tmp_path, prefix):
    archive = zip_folder(kaggle_dataset, tmp_path / "data.zip", prefix)
    dataset = open_dataset(archive, unpack_to=tmp_path / "unzipped")
    assert dataset.class_names == CLASSES
    assert dataset.validation is not None and dataset.test is not None


def test_zip_of_class_folders(class_folder_dataset, tmp_path):
    dataset = open_dataset(zip_folder(class_folder_dataset, tmp_path / "c.zip"), tmp_path / "u")
    assert len(dataset.train) == 18


def test_any_number_of_classes(tmp_path):
    names = tuple(f"letter_{c}" for c in "abcdefg")
    root = tmp_path / "signs"
    for name in names:
        (root / name).mkdir(parents=True)
        draw_gesture("rock", 16).save(root / name / "x.png")
    assert open_dataset(root).class_names == names


def test_label_from_file_name_prefers_longest_match():
    classes = ("rock", "rock_on", "paper")
    assert label_from_file_name("rock_on3.png", classes) == 1
    assert label_from_file_name("Rock-hires2.PNG", classes) == 0
    assert label_from_file_name("lizard1.png", classes) is None


def test_sequence_id():
    assert sequence_id("/x/rock01-012.png") == "rock01"
    assert sequence_id("testrock04-117.png") == "testrock04"
    assert sequence_id("paper7.png") == "paper7"


def test_split_by_sequence_never_puts_a_sequence_on_both_sides(tmp_path):
    write_class_folders(tmp_path / "d", per_class=30, sequences=6)
    dataset = open_dataset(tmp_path / "d")
    train, held_out = split_by_sequence(dataset.train, 0.2, seed=1)
    assert len(train) + len(held_out) == len(dataset.train)
    train_sequences = {(label, sequence_id(p)) for p, label in zip(train.paths, train.labels)}
    held_sequences = {(label, sequence_id(p)) for p, label in zip(held_out.paths, held_out.labels)}
    assert train_sequences.isdisjoint(held_sequences)
    assert all(count > 0 for count in held_out.counts(3))
    assert split_by_sequence(dataset.train, 0.2, seed=1) == (train, held_out)


def test_split_refuses_when_it_cannot_avoid_a_leak(tmp_path):
    write_class_folders(tmp_path / "d", per_class=4, sequences=1)
    with pytest.raises(DatasetError, match="single image sequence"):
        split_by_sequence(open_dataset(tmp_path / "d").train, 0.2, seed=1)


def test_fingerprint_changes_with_the_data(class_folder_dataset):
    first = open_dataset(class_folder_dataset).fingerprint()
    assert open_dataset(class_folder_dataset).fingerprint() == first
    draw_gesture("rock", 20).save(class_folder_dataset / "rock" / "extra.png")
    assert open_dataset(class_folder_dataset).fingerprint() != first


def test_evaluation_split_uses_kaggle_test_folder(kaggle_dataset):
    names, images = evaluation_split(kaggle_dataset)
    assert names == CLASSES and len(images) == 9
    assert all("/test/" in path for path in images.paths)


def _one_class(root):
    write_class_folders(root, classes=("rock",))


def _empty_class(root):
    write_class_folders(root)
    shutil.rmtree(root / "paper")
    (root / "paper").mkdir()


def _text_as_png(root):
    write_class_folders(root)
    (root / "rock" / "notes.png").write_text("not an image")


def _wrong_extension(root):
    write_class_folders(root)
    (root / "rock" / "notes.txt").write_text("hello")


def _loose_images(root):
    write_class_folders(root)
    draw_gesture("rock").save(root / "loose.png")


def _flat_unknown_name(root):
    write_class_folders(root / "train")
    (root / "validation").mkdir()
    draw_gesture("rock").save(root / "validation" / "lizard1.png")


def _no_class_folders(root):
    root.mkdir()
    (root / "readme.txt").write_text("hi")


@pytest.mark.parametrize(
    "make, message",
    [
        (_one_class, "only one class"),
        (_empty_class, "empty"),
        (_text_as_png, "not a readable image"),
        (_wrong_extension, "not an image"),
        (_loose_images, "mixes loose images"),
        (_flat_unknown_name, "Cannot tell the class"),
        (_no_class_folders, "no class folders"),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else None,
)
def test_bad_layouts_get_clear_errors(tmp_path, make, message):
    root = tmp_path / "bad"
    make(root)
    with pytest.raises(DatasetError, match=message):
        open_dataset(root)


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "nowhere")


def test_unsafe_zip_is_refused(tmp_path):
    import zipfile

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("../rock/x.png", b"x")
    with pytest.raises(ArchiveError):
        open_dataset(archive, unpack_to=tmp_path / "u")


def test_datasets_as_people_have_them(tmp_path):
    """Any file names, upper-case extensions, photos one folder deeper, macOS and Windows
    litter: all read, litter ignored."""
    root = tmp_path / "phone"
    names = {"paper": ["IMG_0001.JPG", "photo (3).jpg", "IMG_0002.jpeg"],
             "rock": ["rock_1.png", "rock_2.PNG", "session 2/IMG_0101.JPG"],
             "scissors": ["a.bmp", "b.gif", "c.webp"]}
    for label, files in names.items():
        for index, name in enumerate(files):
            path = root / label / name
            path.parent.mkdir(parents=True, exist_ok=True)
            draw_gesture(label, 32, seed=index).save(path)
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "rock" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "__MACOSX" / "rock").mkdir(parents=True)
    (root / "__MACOSX" / "rock" / "._rock_1.png").write_bytes(b"\0\5\26\7")
    (root / "paper" / "Thumbs.db").write_bytes(b"\0")
    dataset = open_dataset(root)
    assert dataset.class_names == CLASSES
    assert dataset.train.counts(3) == [3, 3, 3]
    assert any(path.endswith("session 2/IMG_0101.JPG") for path in dataset.train.paths)


def test_too_deep_folders_are_refused_clearly(tmp_path):
    write_class_folders(tmp_path / "d")
    deep = tmp_path / "d" / "rock" / "a" / "b"
    deep.mkdir(parents=True)
    draw_gesture("rock").save(deep / "x.png")
    with pytest.raises(DatasetError, match="one folder below it"):
        open_dataset(tmp_path / "d")


def test_the_split_follows_the_names(tmp_path):
    """Rendered sequences are held out whole; other names get a seeded stratified split that
    keeps every class on both sides and does not depend on file order."""
    from rps.datasets import (SPLIT_SEQUENCES, SPLIT_STRATIFIED, LabelledImages, looks_like_sequences,
                              split_for_validation)

    rendered = open_dataset(write_class_folders(tmp_path / "rendered", per_class=9)).train
    assert looks_like_sequences(rendered)
    assert split_for_validation(rendered, 0.2, seed=1)[2] == SPLIT_SEQUENCES
    paths = tuple(f"/d/{label}/IMG_{1000 + i}.JPG" for label in CLASSES for i in range(10))
    phone = LabelledImages(paths, tuple(index for index in range(3) for _ in range(10)))
    assert not looks_like_sequences(phone)
    train, held_out, how = split_for_validation(phone, 0.2, seed=1)
    assert how == SPLIT_STRATIFIED
    assert held_out.counts(3) == [2, 2, 2] and train.counts(3) == [8, 8, 8]
    assert not set(train.paths) & set(held_out.paths)
    reordered = LabelledImages(phone.paths[::-1], phone.labels[::-1])
    assert set(split_for_validation(reordered, 0.2, seed=1)[1].paths) == set(held_out.paths)
    assert split_for_validation(phone, 0.2, seed=2)[1] != held_out
    one_each = LabelledImages(("/d/a/x.png", "/d/b/y.png"), (0, 1))
    train, held_out, _ = split_for_validation(one_each, 0.2, seed=1)
    assert len(train) == 2 and len(held_out) == 0  # a class's only photo stays in training


def test_the_latest_samples_of_each_class_are_held_out():
    """Teach's split: the last 20% of each class by name (capture time), whatever the order given."""
    from rps.datasets import LabelledImages, split_latest

    paths = tuple(f"/s/{label}/{1_700_000_000_000_000_000 + i}-ab12.png" for label in CLASSES for i in range(10))
    samples = LabelledImages(paths[::-1], tuple(index for index in range(3) for _ in range(10))[::-1])
    fit, held_out = split_latest(samples, 0.2)
    assert held_out.counts(3) == [2, 2, 2] and fit.counts(3) == [8, 8, 8]
    for label in CLASSES:
        names = sorted(path for path in paths if f"/{label}/" in path)
        assert sorted(path for path in held_out.paths if f"/{label}/" in path) == names[-2:]
    two = LabelledImages(("/s/a/1.png", "/s/a/2.png", "/s/b/1.png"), (0, 0, 1))
    assert split_latest(two, 0.2)[1].paths == ("/s/a/2.png",)  # a class's only photo stays in the fit


def test_errors_about_a_zip_name_the_zip_not_where_it_was_unpacked(tmp_path):
    one_class = tmp_path / "one"
    (one_class / "rock").mkdir(parents=True)
    draw_gesture("rock").save(one_class / "rock" / "a.png")
    archive = zip_folder(one_class, tmp_path / "my-photos.zip")
    for opening in (lambda: open_dataset(archive, unpack_to=tmp_path / "scratch"),
                    lambda: evaluation_split(archive, unpack_to=tmp_path / "s2")):
        with pytest.raises(DatasetError) as raised:
            opening()
        assert "my-photos.zip" in str(raised.value) and "scratch" not in str(raised.value) \
            and "unpacked" not in str(raised.value)


def test_the_description_says_when_validation_comes_out_of_train(class_folder_dataset, kaggle_dataset):
    assert open_dataset(class_folder_dataset).describe().endswith("train 18; a validation share is held out of train")
    assert "held out" not in open_dataset(kaggle_dataset).describe()  # it has its own validation folder
