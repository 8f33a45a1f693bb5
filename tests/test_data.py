"""tlcourse.data on real CIFAR-10: finding it (argument, $TLCOURSE_DATA, cache, download) and
loading whatever was found, including the shared ``cifar10-jpeg.tar.xz``; the re-exported names.

The shared archive is only read, and a test checks that nothing was written next to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from data_files import snapshot

from tlcourse import archives, cifar10_python, data, hub, image_folder, imageset, pipeline
from tlcourse.config import CIFAR10_CLASSES, DATA_ENV
from tlcourse.errors import DataFormatError, DataNotFoundError
from tlcourse.imageset import ImageSet

PROJECT_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# Image-folder trees and the shared JPEG archive
# --------------------------------------------------------------------------------------------


def test_load_cifar10_reads_an_image_folder_root(image_folder_root, no_env):
    assert data.locate_cifar10(image_folder_root) == image_folder_root
    train, test = data.load_cifar10(image_folder_root, download=False)
    assert (len(train), len(test)) == (200, 100)
    assert train.class_names == CIFAR10_CLASSES


@pytest.fixture(scope="module")
def jpeg_archive(shared_dir: Path) -> Path:
    return shared_dir / "data" / "cifar10-jpeg.tar.xz"


@pytest.fixture(scope="module")
def jpeg_archive_before(jpeg_archive: Path) -> dict[str, tuple[int, int]]:
    """The archive's folder before any loader of this module read the archive."""
    return snapshot(jpeg_archive.parent)


@pytest.fixture(scope="module")
def jpeg_archive_sets(jpeg_archive, jpeg_archive_before) -> tuple[ImageSet, ImageSet]:
    """All 60,000 images of the shared .tar.xz, read once (about 10 s)."""
    return data.load_cifar10(jpeg_archive, download=False)


def test_jpeg_archive_loads_all_images_in_official_order(jpeg_archive_sets):
    train, test = jpeg_archive_sets
    assert train.images.shape == (50_000, 32, 32, 3) and test.images.shape == (10_000, 32, 32, 3)
    assert train.images.dtype == np.uint8 and test.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and test.labels.dtype == np.int64
    assert train.class_names == test.class_names == CIFAR10_CLASSES
    # sorted member names: class by class in label order, files in name order
    np.testing.assert_array_equal(train.labels, np.repeat(np.arange(10), 5_000))
    np.testing.assert_array_equal(test.labels, np.repeat(np.arange(10), 1_000))
    assert 110 < train.images.mean() < 130


def test_jpeg_archive_pixels_equal_the_extracted_files(jpeg_archive_sets, image_sets):
    # image_folder_root holds NNNN.jpg < 20 (train) and < 10 (test) of each class
    for full, extracted, per_class, kept in zip(
        jpeg_archive_sets,
        (image_sets["train"], image_sets["test"]),
        (5_000, 1_000),
        (20, 10),
        strict=True,
    ):
        index = (np.arange(10)[:, None] * per_class + np.arange(kept)).ravel()
        np.testing.assert_array_equal(full.images[index], extracted.images)
        np.testing.assert_array_equal(full.labels[index], extracted.labels)


def test_locate_finds_the_jpeg_archive(jpeg_archive, monkeypatch, tmp_path, no_env):
    monkeypatch.setenv(DATA_ENV, str(jpeg_archive))
    assert data.locate_cifar10(download=False) == jpeg_archive
    holder = tmp_path / "downloads"
    holder.mkdir()
    (holder / "notes.txt").write_text("not an archive")
    (holder / jpeg_archive.name).symlink_to(jpeg_archive)
    assert data.locate_cifar10(holder) == holder / jpeg_archive.name


def test_locate_tells_python_and_image_archives_apart(archive, small_archives, tmp_path, no_env):
    renamed = tmp_path / "c10-python.tgz"  # the official archive under another name
    renamed.symlink_to(archive)
    assert data.locate_cifar10(renamed) == renamed
    assert data.locate_cifar10(small_archives[".zip"]) == small_archives[".zip"]
    both = tmp_path / "both"
    both.mkdir()
    for path in (renamed, small_archives[".zip"]):
        (both / path.name).symlink_to(path)
    with pytest.raises(DataFormatError, match=r"several archives.*c10-python\.tgz, images\.zip"):
        data.locate_cifar10(both)
    unrelated = tmp_path / "notes.zip"
    with zipfile.ZipFile(unrelated, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(DataFormatError, match=r"(?s)archive of \d+ bytes holding: readme\.txt"):
        data.locate_cifar10(unrelated)


def test_nothing_written_next_to_the_archive(jpeg_archive, jpeg_archive_before, jpeg_archive_sets):
    assert snapshot(jpeg_archive.parent) == jpeg_archive_before


# --------------------------------------------------------------------------------------------
# Finding CIFAR-10
# --------------------------------------------------------------------------------------------


def test_locate_explicit_paths(cifar10_root, batches_dir, archive, tmp_path, no_env):
    assert data.locate_cifar10(batches_dir, download=False) == batches_dir
    assert data.locate_cifar10(cifar10_root, download=False) == batches_dir  # folder first
    assert data.locate_cifar10(archive, download=False) == archive
    only_archive = tmp_path / "downloads"
    only_archive.mkdir()
    (only_archive / archive.name).symlink_to(archive)
    assert data.locate_cifar10(str(only_archive)) == only_archive / archive.name


def test_locate_env_var_then_cache(cifar10_root, batches_dir, archive, monkeypatch, no_env):
    (no_env / archive.name).symlink_to(archive)
    assert data.locate_cifar10(download=False) == no_env / archive.name
    monkeypatch.setenv(DATA_ENV, str(cifar10_root))
    assert data.locate_cifar10(download=False) == batches_dir  # $TLCOURSE_DATA beats the cache
    assert data.locate_cifar10(archive, download=False) == archive  # `path` beats both


def test_load_cifar10_from_the_cache(batches_dir, no_env, folder_sets):
    (no_env / batches_dir.name).symlink_to(batches_dir, target_is_directory=True)
    train, test = data.load_cifar10(download=False)
    np.testing.assert_array_equal(test.images, folder_sets[1].images)
    assert len(train) == 50_000


def test_nothing_found_without_download(no_env):
    with pytest.raises(DataNotFoundError) as info:
        data.locate_cifar10(download=False)
    message = str(info.value)
    assert DATA_ENV in message and str(no_env) in message
    assert hub.REGISTRY["cifar10-python"].origin in message and "cifar-10-batches-py" in message
    with pytest.raises(DataNotFoundError, match="http://mirror.example/c10.tgz"):
        data.load_cifar10(download=False, origin="http://mirror.example/c10.tgz")


def test_download_goes_through_the_hub(archive, monkeypatch, no_env):
    calls = []

    def fetch(name, *, origin=None, cache=None, hint=""):
        calls.append((name, origin))
        if origin == "http://offline.example/c10.tgz":
            raise DataNotFoundError("no network")
        return archive

    monkeypatch.setattr(hub, "fetch", fetch)
    assert data.locate_cifar10() == archive
    with pytest.raises(DataNotFoundError) as info:
        data.locate_cifar10(origin="http://offline.example/c10.tgz")
    assert calls == [("cifar10-python", None), ("cifar10-python", "http://offline.example/c10.tgz")]
    message = str(info.value)
    assert DATA_ENV in message and "http://offline.example/c10.tgz" in message
    assert "no network" in message


def test_locate_rejects_missing_and_unrelated_paths(tmp_path, monkeypatch, no_env):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        data.locate_cifar10(tmp_path / "nowhere")
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "readme.txt").write_text("hello")
    with pytest.raises(DataFormatError, match=r"(?s)holding: readme\.txt.*cifar-10-batches-py"):
        data.locate_cifar10(tmp_path / "stuff")
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "stuff"))
    with pytest.raises(DataFormatError, match=r"\$TLCOURSE_DATA"):
        data.locate_cifar10()


# --------------------------------------------------------------------------------------------
# One entry point
# --------------------------------------------------------------------------------------------


def test_public_names_are_re_exported_from_their_modules():
    # every name `from tlcourse.data import X` gave before the split into modules
    before = {
        "ARCHIVE_SUFFIXES", "CIFAR10_ARCHIVE", "CIFAR10_FOLDER", "CIFAR10_HUB_NAME",
        "IMAGE_EXTENSIONS", "META_FILE", "MIN_IMAGE_SIZE", "TEST_BATCH", "TRAIN_BATCHES",
        "ImageSet", "load_cifar10", "load_cifar10_python", "load_image_folder", "locate_cifar10",
        "make_dataset", "stratified_split", "take_per_class",
    }  # fmt: skip
    assert before <= set(data.__all__)
    assert all(hasattr(data, name) for name in data.__all__)
    assert data.ImageSet is imageset.ImageSet
    assert data.load_cifar10_python is cifar10_python.load_cifar10_python
    assert data.load_image_folder is image_folder.load_image_folder
    assert data.ARCHIVE_SUFFIXES is archives.ARCHIVE_SUFFIXES
    assert data.make_dataset is pipeline.make_dataset


def test_importing_data_report_or_cli_loads_no_tensorflow():
    code = (
        "import sys, tlcourse.data, tlcourse.report, tlcourse.cli; "
        "print(tlcourse.data.__file__, 'tensorflow' in sys.modules)"
    )
    path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
    )
    module, loaded = run.stdout.split()
    assert Path(module).is_relative_to(PROJECT_ROOT)
    assert loaded == "False"
