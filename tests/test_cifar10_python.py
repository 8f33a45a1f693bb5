"""tlcourse.cifar10_python on real CIFAR-10: the official python layout, folder and archive.

Broken layouts are made from copies (or links) of the real files in ``tmp_path``; the source
folder from the fixtures is only read.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from tlcourse.cifar10_python import load_cifar10_python
from tlcourse.config import CIFAR10_CLASSES
from tlcourse.errors import DataFormatError

BATCH_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
ALL_FILES = (*BATCH_FILES, "test_batch", "batches.meta")


def _linked_batches(source: Path, target: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """A ``cifar-10-batches-py`` folder of symlinks to the real files, minus ``skip``."""
    target.mkdir(parents=True)
    for name in ALL_FILES:
        if name not in skip:
            (target / name).symlink_to(source / name)
    return target


# --------------------------------------------------------------------------------------------
# Reading the official layout
# --------------------------------------------------------------------------------------------


def test_python_folder_has_the_official_counts_and_types(folder_sets):
    train, test = folder_sets
    assert (len(train), len(test)) == (50_000, 10_000)
    assert train.images.shape == (50_000, 32, 32, 3) and test.images.shape == (10_000, 32, 32, 3)
    assert train.images.dtype == np.uint8 and test.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and test.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == [5_000] * 10
    assert np.bincount(test.labels).tolist() == [1_000] * 10
    assert train.class_names == test.class_names == CIFAR10_CLASSES
    assert train.num_classes == 10


def test_archive_gives_the_same_images_as_the_folder(folder_sets, archive_sets):
    for from_folder, from_archive in zip(folder_sets, archive_sets, strict=True):
        assert np.array_equal(from_folder.images, from_archive.images)
        assert np.array_equal(from_folder.labels, from_archive.labels)
        assert from_archive.class_names == CIFAR10_CLASSES


def test_pixels_are_plausible_rgb(folder_sets):
    train, _ = folder_sets
    mean = train.images.mean(axis=(0, 1, 2))
    assert 110 < mean.mean() < 130  # CIFAR-10's mean pixel is about 120.7
    assert mean[0] > mean[2]  # red brighter than blue on average: channels are R, G, B


def test_planar_rows_become_channels_last(folder_sets, raw_test_batch):
    _, test = folder_sets
    first = raw_test_batch[b"data"][0]
    assert test.labels[0] == raw_test_batch[b"labels"][0]
    np.testing.assert_array_equal(test.images[0], first.reshape(3, 32, 32).transpose(1, 2, 0))
    assert tuple(test.images[0, 0, 0]) == (first[0], first[1024], first[2048])


# --------------------------------------------------------------------------------------------
# Broken python layouts
# --------------------------------------------------------------------------------------------


def test_truncated_archive(archive, tmp_path):
    short = tmp_path / archive.name
    with open(archive, "rb") as src:
        short.write_bytes(src.read(8 << 20))
    with pytest.raises(DataFormatError, match=r"download CIFAR-10 again"):
        load_cifar10_python(short)


def test_missing_batch_file(batches_dir, tmp_path):
    folder = _linked_batches(batches_dir, tmp_path / "cifar-10-batches-py", skip=("data_batch_3",))
    with pytest.raises(DataFormatError, match="missing data_batch_3"):
        load_cifar10_python(folder)


def test_truncated_pickle(batches_dir, tmp_path):
    folder = _linked_batches(batches_dir, tmp_path / "b", skip=("data_batch_2",))
    with open(batches_dir / "data_batch_2", "rb") as src:
        (folder / "data_batch_2").write_bytes(src.read(1 << 20))
    with pytest.raises(DataFormatError, match=r"data_batch_2 could not be read.*again"):
        load_cifar10_python(folder)


def test_foreign_pickle_is_refused_not_run(batches_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    folder = _linked_batches(batches_dir, tmp_path / "b", skip=("test_batch",))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Payload()}, protocol=2))
    with pytest.raises(DataFormatError, match=r"refused to load the global (posix|nt)\.mkdir"):
        load_cifar10_python(folder)
    assert not marker.exists()


def test_wrong_array_size(batches_dir, raw_test_batch, tmp_path):
    folder = _linked_batches(batches_dir, tmp_path / "b", skip=("test_batch",))
    cut = {**raw_test_batch, b"data": raw_test_batch[b"data"][:, :3000].copy()}
    (folder / "test_batch").write_bytes(pickle.dumps(cut))  # protocol 5: numpy's _frombuffer
    with pytest.raises(DataFormatError, match=r"test_batch: b'data'.*\(N, 3072\).*3000"):
        load_cifar10_python(folder)


def test_class_names_out_of_order(batches_dir, tmp_path):
    folder = _linked_batches(batches_dir, tmp_path / "b", skip=("batches.meta",))
    names = [c.encode() for c in CIFAR10_CLASSES]
    names[3], names[5] = names[5], names[3]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))
    with pytest.raises(DataFormatError, match="batches.meta lists the classes"):
        load_cifar10_python(folder)
