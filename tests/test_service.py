"""rps.service: atomic promotion that survives restarts, one training at a time, safe paths."""

from __future__ import annotations

import json
import os
import time

import pytest

from conftest import write_kaggle_layout
from rps.config import TrainConfig
from rps.errors import DatasetError, ModelFileError, TrainingBusyError
from rps.service import ModelService

# Integration tests (trainings through the service): CI runs them all; `-m "not slow"` skips them.
pytestmark = pytest.mark.slow

TINY = TrainConfig(architecture="baseline", input="image", image_size=32, batch_size=8, epochs=1, augmentation="none", patience=0)
SLOW = TrainConfig(architecture="baseline", input="image", image_size=32, batch_size=2, epochs=200, augmentation="none", patience=0)


def wait_until_done(job, seconds=120):
    deadline = time.monotonic() + seconds
    while not job.done and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.done, job.status


@pytest.fixture
def service(tmp_path, tiny_model):
    """A service whose bundled model is the session's tiny model."""
    return ModelService(tmp_path / "state", bundled_model=tiny_model, data_root=tmp_path / "allowed")


def test_train_promote_and_restart_serves_the_promoted_model(service, tmp_path, tiny_model):
    data = write_kaggle_layout(tmp_path / "allowed" / "rps")
    job = service.start_training(data, TINY)
    wait_until_done(job)
    assert job.status == "finished", job.message
    assert service.served_folder() == tiny_model
    service.promote(job.run_id)
    assert service.served_folder() == job.folder
    restarted = ModelService(tmp_path / "state", bundled_model=tiny_model)
    assert restarted.served_folder() == job.folder
    assert restarted.startup_warning == ""


def test_second_training_is_refused_while_one_runs(service, tmp_path):
    data = write_kaggle_layout(tmp_path / "allowed" / "rps")
    job = service.start_training(data, SLOW)
    try:
        with pytest.raises(TrainingBusyError, match="already running"):
            service.start_training(data, TINY)
    finally:
        assert service.stop_training()
        wait_until_done(job)
    assert job.status == "stopped"
    assert not job.folder.exists()  # a stopped run saves nothing


def test_bad_data_fails_fast_and_frees_the_slot(service, tmp_path):
    (tmp_path / "allowed" / "empty").mkdir(parents=True)
    with pytest.raises(DatasetError):
        service.start_training(tmp_path / "allowed" / "empty", TINY)
    assert service.job.done
    data = write_kaggle_layout(tmp_path / "allowed" / "rps")
    wait_until_done(service.start_training(data, TINY))


def test_corrupt_promoted_model_falls_back_to_the_bundled_one(service, tmp_path, tiny_model):
    data = write_kaggle_layout(tmp_path / "allowed" / "rps")
    job = service.start_training(data, TINY)
    wait_until_done(job)
    service.promote(job.run_id)
    (job.folder / "model.keras").write_bytes(b"corrupted on disk")
    restarted = ModelService(tmp_path / "state", bundled_model=tiny_model)
    assert restarted.served_folder() == tiny_model
    assert "could not be loaded" in restarted.startup_warning


def test_failed_promotion_changes_nothing(service, tmp_path, tiny_model):
    data = write_kaggle_layout(tmp_path / "allowed" / "rps")
    job = service.start_training(data, TINY)
    wait_until_done(job)
    (job.folder / "model.keras").write_bytes(b"broken")
    with pytest.raises(ModelFileError):
        service.promote(job.run_id)
    assert service.served_folder() == tiny_model
    assert not (tmp_path / "state" / "served.json").exists()


@pytest.mark.parametrize("run_id", ["../../etc", "/abs/path", "20260101-000000-abcdef/../x", "", None])
def test_run_ids_from_requests_cannot_escape(service, run_id):
    with pytest.raises(ModelFileError):
        service.promote(run_id)


@pytest.mark.parametrize("text", ["..", "../outside", "/etc", "rps/../../outside"])
def test_server_folders_stay_inside_the_allowed_root(service, tmp_path, text):
    (tmp_path / "allowed" / "rps").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    with pytest.raises(DatasetError, match="outside|does not exist"):
        service.resolve_server_folder(text)


def test_symlink_out_of_the_allowed_root_is_refused(service, tmp_path):
    (tmp_path / "allowed").mkdir()
    (tmp_path / "secret").mkdir()
    os.symlink(tmp_path / "secret", tmp_path / "allowed" / "link")
    with pytest.raises(DatasetError, match="outside"):
        service.resolve_server_folder("link")


def test_server_folders_disabled_without_a_root(tmp_path, tiny_model):
    service = ModelService(tmp_path / "state", bundled_model=tiny_model)
    with pytest.raises(DatasetError, match="RPS_DATA_ROOT"):
        service.resolve_server_folder("anything")


def test_promoted_pointer_is_plain_json(service, tmp_path):
    data = write_kaggle_layout(tmp_path / "allowed" / "rps")
    job = service.start_training(data, TINY)
    wait_until_done(job)
    service.promote(job.run_id)
    assert json.loads((tmp_path / "state" / "served.json").read_text()) == {"run_id": job.run_id}


def test_a_job_reads_done_only_once_its_upload_is_removed(service, tmp_path, monkeypatch):
    """Whoever waits for ``done`` must find the unpacked upload gone, however slow the removal."""
    import shutil

    from conftest import zip_folder

    remove = shutil.rmtree

    def slow_remove(path, *args, **kwargs):
        time.sleep(0.5)
        remove(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", slow_remove)
    job = service.start_training(zip_folder(write_kaggle_layout(tmp_path / "data"), tmp_path / "data.zip"), TINY)
    wait_until_done(job)
    assert job.status == "finished"
    assert not job.unpack_dir.exists()


def test_unpacked_uploads_are_removed_whatever_the_ending(service, tmp_path, monkeypatch):
    """An uploaded zip is unpacked to a folder of the state that goes when the run ends:
    finished, stopped, or refused for a bad layout."""
    from conftest import zip_folder

    scratch = service.uploads_dir
    good = zip_folder(write_kaggle_layout(tmp_path / "good"), tmp_path / "good.zip")
    write_kaggle_layout(tmp_path / "one-class")
    bad = zip_folder(tmp_path / "one-class" / "train" / "rock", tmp_path / "bad.zip", "rock/")

    wait_until_done(service.start_training(good, TINY))
    job = service.start_training(good, SLOW)
    assert list(scratch.iterdir())  # unpacked while it runs
    service.stop_training()
    wait_until_done(job)
    with pytest.raises(DatasetError):
        service.start_training(bad, TINY)
    assert not list(scratch.iterdir())


def test_promotion_on_a_full_disk_keeps_the_previous_model(service, tmp_path, monkeypatch):
    import json
    import os

    from rps.errors import ModelFileError

    job = service.start_training(write_kaggle_layout(tmp_path / "data"), TINY)
    wait_until_done(job)
    before = service.served_folder()
    real_dump = json.dump

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(json, "dump", disk_full)
    with pytest.raises(ModelFileError, match="No space left on device.*previous model still serves"):
        service.promote(job.run_id)
    monkeypatch.setattr(json, "dump", real_dump)
    assert service.served_folder() == before
    assert not list(service.state_dir.glob(".served-*"))
    assert not (service.state_dir / "served.json").exists() or os.path.getsize(service.state_dir / "served.json")


def test_a_download_runs_inside_the_training_slot_once(service, tmp_path):
    """Two first requests for a download: the second is refused while the first downloads, so
    they never share a download folder; the download's failure fails the job with its text."""
    import threading

    from rps.errors import CredentialsError

    release = threading.Event()
    calls = []

    def slow_download():
        calls.append(1)
        release.wait(30)
        return write_kaggle_layout(tmp_path / "downloaded")

    job = service.start_training(slow_download, TINY)
    assert job.status == "downloading" and not job.done
    with pytest.raises(TrainingBusyError):
        service.start_training(slow_download, TINY)
    release.set()
    wait_until_done(job)
    assert job.status == "finished" and calls == [1]

    def no_credentials():
        raise CredentialsError("Kaggle credentials were not found.")

    failed = service.start_training(no_credentials, TINY)
    wait_until_done(failed)
    assert failed.status == "failed" and "credentials were not found" in failed.message


def test_a_training_over_the_memory_budget_is_refused_at_start(tmp_path, tiny_model):
    """The estimate and the budget are in the message; nothing runs and nothing is left."""
    from rps.errors import ConfigError
    from rps.memory import estimate_training_bytes

    data = write_kaggle_layout(tmp_path / "data")
    big = TrainConfig(architecture="improved", input="image", image_size=512, batch_size=64, epochs=1,
                      augmentation="none")
    service = ModelService(tmp_path / "state", bundled_model=tiny_model,
                           environ={"RPS_MAX_TRAIN_MEMORY": "4G"})
    with pytest.raises(ConfigError, match=r"about \d+\.\d GB .* allows 4\.0 GB \(RPS_MAX_TRAIN_MEMORY\)"):
        service.start_training(data, big)
    assert service.job.status == "failed" and list(service.uploads_dir.iterdir()) == []
    # A small training fits the same budget; the estimate grows with batch and input size.
    job = service.start_training(data, TINY)
    wait_until_done(job)
    assert job.status == "finished" and 0 < job.memory_estimate < 4 * 2**30
    assert estimate_training_bytes(big, 3, 30) > estimate_training_bytes(TINY, 3, 30)


@pytest.mark.parametrize("text,expected", [("4G", 4 * 2**30), ("3500M", 3500 * 2**20), ("2.5GB", int(2.5 * 2**30)),
                                           ("536870912", 2**29)])
def test_memory_sizes_parse(text, expected):
    from rps.memory import parse_size

    assert parse_size(text) == expected


def test_a_bad_memory_setting_is_a_sentence():
    from rps.errors import ConfigError
    from rps.memory import DEFAULT_BUDGET_SHARE, physical_memory_bytes, training_budget_bytes

    with pytest.raises(ConfigError, match="RPS_MAX_TRAIN_MEMORY must be a size"):
        training_budget_bytes({"RPS_MAX_TRAIN_MEMORY": "lots"})
    assert training_budget_bytes({}) == int(physical_memory_bytes() * DEFAULT_BUDGET_SHARE)


def test_promotion_can_be_undone_and_is_remembered(service, tmp_path, tiny_model):
    """Promote two runs, go back one, then to the bundled model: each change serves at once,
    survives a restart, and is in the served history."""
    data = write_kaggle_layout(tmp_path / "data")
    first = service.start_training(data, TINY)
    wait_until_done(first)
    assert first.comparison and first.comparison["photos"] > 0  # the served model on the run's test data
    assert 0 <= first.comparison["served_accuracy"] <= 1
    second = service.start_training(data, TINY)
    wait_until_done(second)
    service.promote(first.run_id)
    service.promote(second.run_id)
    assert service.served_folder().name == second.run_id
    service.serve_previous()
    assert service.served_folder().name == first.run_id
    assert ModelService(tmp_path / "state", bundled_model=tiny_model).served_folder().name == first.run_id
    service.serve_bundled()
    assert service.served_folder() == tiny_model
    assert not (tmp_path / "state" / "served.json").exists()
    restarted = ModelService(tmp_path / "state", bundled_model=tiny_model)
    assert restarted.served_folder() == tiny_model
    assert [entry["model"] for entry in restarted.served_history()] == [
        first.run_id, second.run_id, first.run_id, "bundled"]
    restarted.serve_previous()  # back from the bundled model to the run served before it
    assert restarted.served_folder().name == first.run_id


def test_there_is_no_previous_model_at_first(service):
    with pytest.raises(ModelFileError, match="no earlier served model"):
        service.serve_previous()


def test_serving_the_previous_model_walks_back_one_step_each_time(service, tmp_path, tiny_model):
    data = write_kaggle_layout(tmp_path / "data")
    runs = []
    for _ in range(3):
        job = service.start_training(data, TINY)
        wait_until_done(job)
        runs.append(job.run_id)
        service.promote(job.run_id)
    for expected in (runs[1], runs[0]):
        service.serve_previous()
        assert service.served_folder().name == expected
    service.serve_previous()
    assert service.served_folder() == tiny_model
    with pytest.raises(ModelFileError, match="no earlier served model"):
        service.serve_previous()


@pytest.mark.parametrize("pointer", ["[]", "null", '"x"', "[1]", "{\"run_id\": 5}", "{not json"])
def test_a_damaged_pointer_falls_back_to_the_bundled_model(tmp_path, tiny_model, pointer):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "served.json").write_text(pointer)
    service = ModelService(tmp_path / "state", bundled_model=tiny_model)
    assert service.served_folder() == tiny_model and "bundled model" in service.startup_warning


@pytest.mark.parametrize("history", ["5", "null", "true", "{}", "[1, {\"x\": 2}]"])
def test_a_damaged_history_never_blocks_promotion(service, tmp_path, history):
    job = service.start_training(write_kaggle_layout(tmp_path / "data"), TINY)
    wait_until_done(job)
    (service.state_dir / "served-history.json").write_text(history)
    service.promote(job.run_id)
    assert [entry["model"] for entry in service.served_history()] == [job.run_id]


@pytest.mark.parametrize("text", ["0", "4", "100M"])
def test_a_memory_budget_too_small_to_train_is_a_start_up_warning(tmp_path, tiny_model, text):
    service = ModelService(tmp_path / "state", bundled_model=tiny_model, environ={"RPS_MAX_TRAIN_MEMORY": text})
    assert "RPS_MAX_TRAIN_MEMORY" in service.startup_warning and "at least 256M" in service.startup_warning
