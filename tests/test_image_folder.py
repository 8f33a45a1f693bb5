"""tlcourse.image_folder on real CIFAR-10 JPEGs: image-folder trees on disk and in archives.

Broken trees are made from copies of the real files in ``tmp_path``; the source folders from the
fixtures are only read, and a test checks that nothing was written to them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from data_files import TOP, make_archive, snapshot
from PIL import Image

from tlcourse.config import CIFAR10_CLASSES
from tlcourse.data import load_cifar10
from tlcourse.errors import DataFormatError
from tlcourse.image_folder import load_image_folder

# --------------------------------------------------------------------------------------------
# Image folders
# --------------------------------------------------------------------------------------------


def test_image_folder_counts_order_and_pixels(image_sets):
    assert set(image_sets) == {"train", "test"}
    for split, per_class in (("train", 20), ("test", 10)):
        images = image_sets[split]
        assert images.class_names == CIFAR10_CLASSES
        assert images.images.shape == (10 * per_class, 32, 32, 3)
        assert images.images.dtype == np.uint8 and images.labels.dtype == np.int64
        assert np.bincount(images.labels).tolist() == [per_class] * 10
        assert 90 < images.images.mean() < 150


def test_image_folder_pixels_equal_the_python_layout(image_sets, folder_sets, raw_test_batch):
    # make-cifar10-python records each image's source file as b"<class>_NNNN.jpg".
    position = {name: i for i, name in enumerate(raw_test_batch[b"filenames"])}
    test = image_sets["test"]
    for k in (0, 9, 15, 99):  # files are read in name order: k = class * 10 + number
        cls, number = CIFAR10_CLASSES[k // 10], k % 10
        index = position[f"{cls}_{number:04d}.jpg".encode()]
        assert test.labels[k] == folder_sets[1].labels[index] == k // 10
        np.testing.assert_array_equal(test.images[k], folder_sets[1].images[index])


def test_image_folder_limit_and_chosen_classes(image_folder_root, image_sets):
    small = load_image_folder(image_folder_root, splits=("train",), limit_per_class=3)
    assert set(small) == {"train"}
    assert np.bincount(small["train"].labels).tolist() == [3] * 10
    np.testing.assert_array_equal(small["train"].images[:3], image_sets["train"].images[:3])

    pets = load_image_folder(image_folder_root, class_names=["dog", "cat"])
    assert pets["test"].class_names == ("dog", "cat")
    assert np.bincount(pets["test"].labels).tolist() == [10, 10]
    cat = CIFAR10_CLASSES.index("cat")
    np.testing.assert_array_equal(
        pets["test"].images[10:], image_sets["test"].images[image_sets["test"].labels == cat]
    )


def test_image_folder_sorts_other_class_names(image_folder_root, tmp_path):
    root = tmp_path / "pets"
    for split in ("train", "test"):
        for cls in ("dog", "cat"):
            shutil.copytree(image_folder_root / split / cls, root / split / cls)
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    sets = load_image_folder(root)
    assert sets["train"].class_names == ("cat", "dog")
    assert np.bincount(sets["train"].labels).tolist() == [20, 20]


@pytest.fixture
def folder_copy(image_folder_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(image_folder_root, tmp_path / "images"))


def test_image_folder_class_missing_in_one_split(folder_copy):
    shutil.rmtree(folder_copy / "test" / "cat")
    with pytest.raises(DataFormatError, match=r"'test' has no folder for the class\(es\) cat"):
        load_image_folder(folder_copy)


def test_image_folder_empty_class(folder_copy):
    for file in (folder_copy / "train" / "frog").iterdir():
        file.unlink()
    with pytest.raises(DataFormatError, match="Class 'frog' of split 'train' has no images"):
        load_image_folder(folder_copy)


def test_image_folder_image_of_another_size(folder_copy):
    odd = folder_copy / "train" / "dog" / "0003.jpg"
    Image.open(odd).resize((40, 30)).save(odd)
    with pytest.raises(DataFormatError, match=r"0003\.jpg is 30x40 .* is 32x32.*image_size="):
        load_image_folder(folder_copy)
    sets = load_image_folder(folder_copy, image_size=(64, 48))  # mixed sizes, resized on load
    assert sets["train"].images.shape[1:] == (64, 48, 3)
    assert len(sets["train"]) == len(load_image_folder(folder_copy, image_size=(32, 32))["train"])


def test_image_folder_reads_gif_and_bmp(folder_copy):
    for suffix in (".gif", ".bmp"):
        jpeg = sorted((folder_copy / "train" / "cat").glob("*.jpg"))[0]
        Image.open(jpeg).save(jpeg.with_suffix(suffix))
        jpeg.unlink()
    sets = load_image_folder(folder_copy)
    cat = sets["train"].class_names.index("cat")
    files = list((folder_copy / "train" / "cat").iterdir())
    assert {f.suffix for f in files} >= {".gif", ".bmp"}
    assert (sets["train"].labels == cat).sum() == len(files)


def test_image_folder_unreadable_image_and_missing_split(folder_copy):
    (folder_copy / "test" / "ship" / "0000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataFormatError, match=r"ship.0000\.jpg could not be read as an image"):
        load_image_folder(folder_copy)
    with pytest.raises(DataFormatError, match="no split folder val"):
        load_image_folder(folder_copy, splits=("train", "val"))
    with pytest.raises(ValueError, match="Received: limit_per_class=0"):
        load_image_folder(folder_copy, limit_per_class=0)


# --------------------------------------------------------------------------------------------
# Image folders in archives
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_small_archives_load_like_the_folder(suffix, small_archives, image_sets, no_env):
    packed = small_archives[suffix]
    sets = load_image_folder(packed)
    for split in ("train", "test"):
        np.testing.assert_array_equal(sets[split].images, image_sets[split].images)
        np.testing.assert_array_equal(sets[split].labels, image_sets[split].labels)
        assert sets[split].class_names == CIFAR10_CLASSES
    train, test = load_cifar10(packed, download=False)
    np.testing.assert_array_equal(test.images, image_sets["test"].images)
    assert len(train) == 200

    pets = load_image_folder(packed, class_names=["dog", "cat"], limit_per_class=3)
    assert pets["train"].class_names == ("dog", "cat")
    assert np.bincount(pets["train"].labels).tolist() == [3, 3]
    dog = CIFAR10_CLASSES.index("dog")
    np.testing.assert_array_equal(
        pets["train"].images[:3], image_sets["train"].images[image_sets["train"].labels == dog][:3]
    )


def test_unreadable_member_is_named(image_folder_root, tmp_path):
    source = Path(shutil.copytree(image_folder_root, tmp_path / "images"))
    (source / "test" / "ship" / "0000.jpg").write_bytes(b"not a jpeg")
    packed = make_archive(source, tmp_path / "bad.zip")
    where = re.escape(f"bad.zip:{TOP}/test/ship/0000.jpg")
    with pytest.raises(DataFormatError, match=f"{where} could not be read as an image"):
        load_image_folder(packed)


def test_nothing_written_into_the_sources(
    sources_before, cifar10_root, image_folder_root, folder_sets, archive_sets, image_sets
):
    assert snapshot(cifar10_root, image_folder_root) == sources_before
