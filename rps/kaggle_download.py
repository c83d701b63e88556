"""Download the study's dataset from Kaggle with the official ``kaggle`` package.

The ``kaggle`` package prints help and calls ``exit(1)`` when it finds no credentials, which
would kill a web app.  So the standard places are checked here first and a missing credential
becomes a ``CredentialsError`` that says how to provide one.  Secrets are never logged or put
in messages: only the name of the place they were found.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Mapping

from rps.archives import extract_zip
from rps.datasets import find_root, is_kaggle_layout
from rps.errors import CredentialsError

STUDY_DATASET = "sanikamal/rock-paper-scissors-dataset"

HOW_TO_AUTHENTICATE = (
    "No Kaggle credentials found. Create an API token at https://www.kaggle.com/settings "
    "(API > Create New Token), then either set KAGGLE_API_TOKEN, or set KAGGLE_USERNAME and "
    "KAGGLE_KEY, or save the downloaded kaggle.json as ~/.kaggle/kaggle.json (chmod 600). "
    "On a Hugging Face Space, add them as Space secrets."
)


def _config_dir(environ: Mapping[str, str], home: Path) -> Path:
    return Path(environ.get("KAGGLE_CONFIG_DIR") or home / ".kaggle")


def find_kaggle_credentials(
    environ: Mapping[str, str] | None = None, home: Path | None = None
) -> str:
    """Name where credentials were found, or raise ``CredentialsError`` saying how to add them."""
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else Path(home)
    if environ.get("KAGGLE_API_TOKEN"):
        return "the KAGGLE_API_TOKEN environment variable"
    if environ.get("KAGGLE_USERNAME") and environ.get("KAGGLE_KEY"):
        return "the KAGGLE_USERNAME and KAGGLE_KEY environment variables"
    config_dir = _config_dir(environ, home)
    for name in ("access_token", "kaggle.json"):
        if (config_dir / name).is_file():
            return str(config_dir / name)
    raise CredentialsError(HOW_TO_AUTHENTICATE)


def _default_api():
    # Imported here: the top-level ``kaggle`` module authenticates (and may exit) on import.
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    try:
        api.authenticate()
    except SystemExit:
        raise CredentialsError(HOW_TO_AUTHENTICATE) from None
    return api


def download_dataset(
    dest: Path | str,
    dataset: str = STUDY_DATASET,
    api_factory: Callable[[], object] = _default_api,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Download and safely unpack ``dataset`` into ``dest``; return the dataset root.

    Nothing is downloaded when ``dest`` already holds the dataset.
    """
    dest = Path(dest)
    unpacked = dest / "unpacked"
    if unpacked.is_dir() and is_kaggle_layout(find_root(unpacked)):
        return find_root(unpacked)
    find_kaggle_credentials(environ)
    api = api_factory()
    staging = dest / ".download"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        try:
            api.dataset_download_files(dataset, path=str(staging), quiet=False, unzip=False)
        except Exception as error:  # the client raises many types; the user needs one message
            raise CredentialsError(
                f"The Kaggle download of {dataset} failed: {type(error).__name__}. Check that "
                "the credentials are valid and that this machine can reach kaggle.com."
            ) from None
        archives = sorted(staging.glob("*.zip"))
        if not archives:
            raise CredentialsError(f"The Kaggle download of {dataset} produced no zip file.")
        shutil.rmtree(unpacked, ignore_errors=True)
        extract_zip(archives[0], unpacked)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return find_root(unpacked)
