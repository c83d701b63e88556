"""rps.kaggle_download: credentials from the standard places, a fake Kaggle API as stand-in."""

from __future__ import annotations

import pytest

from conftest import write_kaggle_layout, zip_folder
from rps.errors import CredentialsError
from rps.kaggle_download import STUDY_DATASET, download_dataset, find_kaggle_credentials

SECRET = "s3cr3t-key-value"


@pytest.mark.parametrize(
    "environ, files, expected",
    [
        ({"KAGGLE_API_TOKEN": SECRET}, [], "KAGGLE_API_TOKEN"),
        ({"KAGGLE_USERNAME": "ann", "KAGGLE_KEY": SECRET}, [], "KAGGLE_USERNAME"),
        ({}, ["kaggle.json"], "kaggle.json"),
        ({}, ["access_token"], "access_token"),
    ],
)
def test_credentials_found_in_each_standard_place(tmp_path, environ, files, expected):
    for name in files:
        (tmp_path / ".kaggle").mkdir(exist_ok=True)
        (tmp_path / ".kaggle" / name).write_text(SECRET)
    where = find_kaggle_credentials(environ, home=tmp_path)
    assert expected in where
    assert SECRET not in where


def test_kaggle_config_dir_is_respected(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "kaggle.json").write_text("{}")
    assert "cfg" in find_kaggle_credentials({"KAGGLE_CONFIG_DIR": str(tmp_path / "cfg")}, tmp_path)


def test_missing_credentials_say_how_to_fix(tmp_path):
    with pytest.raises(CredentialsError, match="KAGGLE_USERNAME and KAGGLE_KEY") as caught:
        find_kaggle_credentials({"KAGGLE_USERNAME": "only-the-user"}, home=tmp_path)
    assert "kaggle.json" in str(caught.value)


class FakeKaggleApi:
    """Stands in for KaggleApi: 'downloads' a zip of a synthetic Kaggle-layout dataset."""

    def __init__(self, source_zip):
        self.source_zip = source_zip
        self.calls = []

    def dataset_download_files(self, dataset, path, quiet, unzip):
        self.calls.append(dataset)
        (path_to := __import__("pathlib").Path(path) / "rock-paper-scissors-dataset.zip").write_bytes(
            self.source_zip.read_bytes()
        )
        return path_to


def test_download_unpacks_and_skips_when_present(tmp_path):
    source = zip_folder(write_kaggle_layout(tmp_path / "src"), tmp_path / "src.zip", "Rock-Paper-Scissors/")
    api = FakeKaggleApi(source)
    environ = {"KAGGLE_API_TOKEN": SECRET}
    root = download_dataset(tmp_path / "dest", api_factory=lambda: api, environ=environ)
    assert (root / "train" / "rock").is_dir() and root.name == "Rock-Paper-Scissors"
    assert api.calls == [STUDY_DATASET]
    assert not list((tmp_path / "dest").glob("*.zip"))
    again = download_dataset(tmp_path / "dest", api_factory=lambda: api, environ=environ)
    assert again == root and api.calls == [STUDY_DATASET]


def test_download_without_credentials_never_calls_the_api(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    called = []
    with pytest.raises(CredentialsError, match="No Kaggle credentials"):
        download_dataset(tmp_path / "dest", api_factory=lambda: called.append(1), environ={})
    assert not called


def test_failed_download_hides_the_secret_and_leaves_nothing(tmp_path):
    class FailingApi:
        def dataset_download_files(self, *args, **kwargs):
            raise RuntimeError(f"401 for key {SECRET}")

    with pytest.raises(CredentialsError) as caught:
        download_dataset(tmp_path / "dest", api_factory=FailingApi, environ={"KAGGLE_API_TOKEN": SECRET})
    assert SECRET not in str(caught.value)
    assert not (tmp_path / "dest" / "unpacked").exists()
