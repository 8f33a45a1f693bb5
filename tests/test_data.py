"""tlcourse.data on real CIFAR-10: the official python layout, its archive, and image folders
(on disk, in the shared ``cifar10-jpeg.tar.xz``, and in archives packed here).

Broken inputs are made from copies (or links) of the real files in ``tmp_path``; the source
folders from the fixtures and the shared archive are only read, and tests check that nothing
was written to them.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlcourse import data, hub
from tlcourse.config import CACHE_ENV, CIFAR10_CLASSES, DATA_ENV
from tlcourse.errors import DataFormatError, DataNotFoundError
from tlcourse.preprocessing import normalize

BATCH_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
ALL_FILES = (*BATCH_FILES, "test_batch", "batches.meta")


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for root in roots
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def sources_before(cifar10_root: Path, image_folder_root: Path) -> dict[str, tuple[int, int]]:
    """The source folders' files, sizes and times before any loader of this module ran."""
    return _snapshot(cifar10_root, image_folder_root)


@pytest.fixture(scope="module")
def batches_dir(cifar10_root: Path) -> Path:
    return cifar10_root / "cifar-10-batches-py"


@pytest.fixture(scope="module")
def archive(cifar10_root: Path) -> Path:
    return cifar10_root / "cifar-10-python.tar.gz"


@pytest.fixture(scope="module")
def folder_sets(sources_before, batches_dir: Path) -> tuple[data.ImageSet, data.ImageSet]:
    return data.load_cifar10_python(batches_dir)


@pytest.fixture(scope="module")
def archive_sets(sources_before, archive: Path) -> tuple[data.ImageSet, data.ImageSet]:
    return data.load_cifar10_python(archive)


@pytest.fixture(scope="module")
def image_sets(sources_before, image_folder_root: Path) -> dict[str, data.ImageSet]:
    return data.load_image_folder(image_folder_root)


@pytest.fixture(scope="module")
def raw_test_batch(batches_dir: Path) -> dict:
    """``test_batch`` read the plain Keras way (trusted here: the fixture's own real file)."""
    with open(batches_dir / "test_batch", "rb") as f:
        return pickle.load(f, encoding="bytes")


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $TLCOURSE_DATA and an empty cache; returns the cache folder."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


def _linked_batches(source: Path, target: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """A ``cifar-10-batches-py`` folder of symlinks to the real files, minus ``skip``."""
    target.mkdir(parents=True)
    for name in ALL_FILES:
        if name not in skip:
            (target / name).symlink_to(source / name)
    return target


# --------------------------------------------------------------------------------------------
# The official python layout
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


def test_image_set_subset_and_len(folder_sets):
    _, test = folder_sets
    part = test.subset([3, 1, 4])
    assert len(part) == 3 and part.class_names == CIFAR10_CLASSES
    np.testing.assert_array_equal(part.images[0], test.images[3])
    np.testing.assert_array_equal(part.labels, test.labels[[3, 1, 4]])
    with pytest.raises(ValueError, match="Received: shape"):
        data.ImageSet(test.images[:2], test.labels[:3], CIFAR10_CLASSES)


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
    small = data.load_image_folder(image_folder_root, splits=("train",), limit_per_class=3)
    assert set(small) == {"train"}
    assert np.bincount(small["train"].labels).tolist() == [3] * 10
    np.testing.assert_array_equal(small["train"].images[:3], image_sets["train"].images[:3])

    pets = data.load_image_folder(image_folder_root, class_names=["dog", "cat"])
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
    sets = data.load_image_folder(root)
    assert sets["train"].class_names == ("cat", "dog")
    assert np.bincount(sets["train"].labels).tolist() == [20, 20]


def test_load_cifar10_reads_an_image_folder_root(image_folder_root, no_env):
    assert data.locate_cifar10(image_folder_root) == image_folder_root
    train, test = data.load_cifar10(image_folder_root, download=False)
    assert (len(train), len(test)) == (200, 100)
    assert train.class_names == CIFAR10_CLASSES


@pytest.fixture
def folder_copy(image_folder_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(image_folder_root, tmp_path / "images"))


def test_image_folder_class_missing_in_one_split(folder_copy):
    shutil.rmtree(folder_copy / "test" / "cat")
    with pytest.raises(DataFormatError, match=r"'test' has no folder for the class\(es\) cat"):
        data.load_image_folder(folder_copy)


def test_image_folder_empty_class(folder_copy):
    for file in (folder_copy / "train" / "frog").iterdir():
        file.unlink()
    with pytest.raises(DataFormatError, match="Class 'frog' of split 'train' has no images"):
        data.load_image_folder(folder_copy)


def test_image_folder_image_of_another_size(folder_copy):
    odd = folder_copy / "train" / "dog" / "0003.jpg"
    Image.open(odd).resize((40, 30)).save(odd)
    with pytest.raises(DataFormatError, match=r"0003\.jpg is 30x40 .* is 32x32.*Resize"):
        data.load_image_folder(folder_copy)
    with pytest.raises(DataFormatError, match=r"is 32x32 .* `image_size` is 64x64"):
        data.load_image_folder(folder_copy, image_size=(64, 64))


def test_image_folder_unreadable_image_and_missing_split(folder_copy):
    (folder_copy / "test" / "ship" / "0000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataFormatError, match=r"ship.0000\.jpg could not be read as an image"):
        data.load_image_folder(folder_copy)
    with pytest.raises(DataFormatError, match="no split folder val"):
        data.load_image_folder(folder_copy, splits=("train", "val"))
    with pytest.raises(ValueError, match="Received: limit_per_class=0"):
        data.load_image_folder(folder_copy, limit_per_class=0)


def test_nothing_written_into_the_sources(
    sources_before, cifar10_root, image_folder_root, folder_sets, archive_sets, image_sets
):
    assert _snapshot(cifar10_root, image_folder_root) == sources_before


# --------------------------------------------------------------------------------------------
# Image folders in archives
# --------------------------------------------------------------------------------------------

TOP = "cifar10-images"  # the top folder of the archives made here


def _make_archive(source: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Pack ``source`` under ``TOP/`` as a zip (files only) or a .tar.gz (with folders)."""
    files = [f for f in sorted(source.rglob("*")) if f.is_file()]
    if target.suffix == ".zip":
        with zipfile.ZipFile(target, "w") as zf:
            for file in files:
                zf.write(file, f"{TOP}/{file.relative_to(source).as_posix()}")
            for name, payload in (extra or {}).items():
                zf.writestr(name, payload)
    else:
        with tarfile.open(target, "w:gz") as tar:
            tar.add(source, arcname=TOP)
            for name, payload in (extra or {}).items():
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return target


@pytest.fixture(scope="module")
def jpeg_archive(shared_dir: Path) -> Path:
    return shared_dir / "data" / "cifar10-jpeg.tar.xz"


@pytest.fixture(scope="module")
def jpeg_archive_before(jpeg_archive: Path) -> dict[str, tuple[int, int]]:
    """The archive's folder before any loader of this module read the archive."""
    return _snapshot(jpeg_archive.parent)


@pytest.fixture(scope="module")
def jpeg_archive_sets(jpeg_archive, jpeg_archive_before) -> tuple[data.ImageSet, data.ImageSet]:
    """All 60,000 images of the shared .tar.xz, read once (about 10 s)."""
    return data.load_cifar10(jpeg_archive, download=False)


@pytest.fixture(scope="module")
def small_archives(image_folder_root: Path, tmp_path_factory) -> dict[str, Path]:
    """The ``image_folder_root`` fixture packed under a top folder as .zip and .tar.gz."""
    out = tmp_path_factory.mktemp("archives")
    return {
        suffix: _make_archive(image_folder_root, out / f"images{suffix}")
        for suffix in (".zip", ".tar.gz")
    }


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


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_small_archives_load_like_the_folder(suffix, small_archives, image_sets, no_env):
    packed = small_archives[suffix]
    sets = data.load_image_folder(packed)
    for split in ("train", "test"):
        np.testing.assert_array_equal(sets[split].images, image_sets[split].images)
        np.testing.assert_array_equal(sets[split].labels, image_sets[split].labels)
        assert sets[split].class_names == CIFAR10_CLASSES
    train, test = data.load_cifar10(packed, download=False)
    np.testing.assert_array_equal(test.images, image_sets["test"].images)
    assert len(train) == 200

    pets = data.load_image_folder(packed, class_names=["dog", "cat"], limit_per_class=3)
    assert pets["train"].class_names == ("dog", "cat")
    assert np.bincount(pets["train"].labels).tolist() == [3, 3]
    dog = CIFAR10_CLASSES.index("dog")
    np.testing.assert_array_equal(
        pets["train"].images[:3], image_sets["train"].images[image_sets["train"].labels == dog][:3]
    )


def test_damaged_archives_are_refused(small_archives, tmp_path):
    for suffix, packed in small_archives.items():
        short = tmp_path / f"short{suffix}"
        short.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
        with pytest.raises(DataFormatError, match=rf"short{re.escape(suffix)}.*Download it again"):
            data.load_image_folder(short)


def test_unsafe_member_names_are_refused(image_folder_root, tmp_path):
    cases = {".tar.gz": "../evil.jpg", ".zip": "/tmp/evil.jpg"}
    for suffix, name in cases.items():
        packed = _make_archive(image_folder_root, tmp_path / f"evil{suffix}", {name: b"x"})
        with pytest.raises(DataFormatError, match=rf"member {re.escape(repr(name))}.*refused"):
            data.load_image_folder(packed)
    assert not (tmp_path.parent / "evil.jpg").exists()


def test_unreadable_member_is_named(image_folder_root, tmp_path):
    source = Path(shutil.copytree(image_folder_root, tmp_path / "images"))
    (source / "test" / "ship" / "0000.jpg").write_bytes(b"not a jpeg")
    packed = _make_archive(source, tmp_path / "bad.zip")
    where = re.escape(f"bad.zip:{TOP}/test/ship/0000.jpg")
    with pytest.raises(DataFormatError, match=f"{where} could not be read as an image"):
        data.load_image_folder(packed)


def test_nothing_written_next_to_the_archive(jpeg_archive, jpeg_archive_before, jpeg_archive_sets):
    assert _snapshot(jpeg_archive.parent) == jpeg_archive_before


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
# Broken python layouts
# --------------------------------------------------------------------------------------------


def test_truncated_archive(archive, tmp_path):
    short = tmp_path / archive.name
    with open(archive, "rb") as src:
        short.write_bytes(src.read(8 << 20))
    with pytest.raises(DataFormatError, match=r"download CIFAR-10 again"):
        data.load_cifar10_python(short)


def test_missing_batch_file(batches_dir, tmp_path):
    folder = _linked_batches(batches_dir, tmp_path / "cifar-10-batches-py", skip=("data_batch_3",))
    with pytest.raises(DataFormatError, match="missing data_batch_3"):
        data.load_cifar10_python(folder)


def test_truncated_pickle(batches_dir, tmp_path):
    folder = _linked_batches(batches_dir, tmp_path / "b", skip=("data_batch_2",))
    with open(batches_dir / "data_batch_2", "rb") as src:
        (folder / "data_batch_2").write_bytes(src.read(1 << 20))
    with pytest.raises(DataFormatError, match=r"data_batch_2 could not be read.*again"):
        data.load_cifar10_python(folder)


def test_foreign_pickle_is_refused_not_run(batches_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    folder = _linked_batches(batches_dir, tmp_path / "b", skip=("test_batch",))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Payload()}, protocol=2))
    with pytest.raises(DataFormatError, match=r"refused to load the global (posix|nt)\.mkdir"):
        data.load_cifar10_python(folder)
    assert not marker.exists()


def test_wrong_array_size(batches_dir, raw_test_batch, tmp_path):
    folder = _linked_batches(batches_dir, tmp_path / "b", skip=("test_batch",))
    cut = {**raw_test_batch, b"data": raw_test_batch[b"data"][:, :3000].copy()}
    (folder / "test_batch").write_bytes(pickle.dumps(cut))  # protocol 5: numpy's _frombuffer
    with pytest.raises(DataFormatError, match=r"test_batch: b'data'.*\(N, 3072\).*3000"):
        data.load_cifar10_python(folder)


def test_class_names_out_of_order(batches_dir, tmp_path):
    folder = _linked_batches(batches_dir, tmp_path / "b", skip=("batches.meta",))
    names = [c.encode() for c in CIFAR10_CLASSES]
    names[3], names[5] = names[5], names[3]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))
    with pytest.raises(DataFormatError, match="batches.meta lists the classes"):
        data.load_cifar10_python(folder)


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def test_stratified_split_keeps_each_class_share(folder_sets):
    labels = folder_sets[0].labels
    train_idx, val_idx = data.stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[val_idx]).tolist() == [1_000] * 10
    assert np.bincount(labels[train_idx]).tolist() == [4_000] * 10
    assert np.array_equal(np.sort(np.concatenate([train_idx, val_idx])), np.arange(50_000))
    again = data.stratified_split(labels, 0.2, seed=0)
    assert np.array_equal(again[1], val_idx)
    assert not np.array_equal(data.stratified_split(labels, 0.2, seed=1)[1], val_idx)
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match=f"Received: val_fraction={bad}"):
            data.stratified_split(labels, bad)


def test_take_per_class(folder_sets):
    labels = folder_sets[1].labels
    picked = data.take_per_class(labels, 7, seed=3)
    assert np.bincount(labels[picked]).tolist() == [7] * 10
    assert np.all(np.diff(picked) > 0)
    assert np.array_equal(picked, data.take_per_class(labels, 7, seed=3))
    assert not np.array_equal(picked, data.take_per_class(labels, 7, seed=4))
    with pytest.raises(ValueError, match="fewer than per_class=1001"):
        data.take_per_class(labels, 1001)


# --------------------------------------------------------------------------------------------
# tf.data pipelines
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(folder_sets) -> data.ImageSet:
    test = folder_sets[1]
    return test.subset(data.take_per_class(test.labels, 5))  # 50 real images


def _first_batch(dataset):
    x, y = next(iter(dataset))
    return x.numpy(), y.numpy()


def test_make_dataset_unit_and_imagenet(small):
    ds = data.make_dataset(
        small.images, small.labels, num_classes=10, batch_size=16, normalization="unit"
    )
    batches = list(ds)
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    x, y = (b.numpy() for b in batches[0])
    assert x.shape == (16, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_allclose(x, small.images[:16] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y.sum(axis=1), np.ones(16))
    np.testing.assert_array_equal(y.argmax(axis=1), small.labels[:16])

    x, _ = _first_batch(
        data.make_dataset(small.images, small.labels, num_classes=10, batch_size=16)
    )
    np.testing.assert_allclose(x, normalize(small.images[:16], "imagenet"), atol=1e-5)
    assert -2.2 < x.min() < 0.0 < 2.0 < x.max() < 2.7


def test_make_dataset_resizes(small):
    ds = data.make_dataset(small.images, small.labels, num_classes=10, batch_size=8, image_size=64)
    x, _ = _first_batch(ds)
    assert x.shape == (8, 64, 64, 3)
    assert ds.element_spec[0].shape.as_list() == [None, 64, 64, 3]


def test_make_dataset_augments_per_epoch_and_seed(small):
    def make(**kwargs):
        return data.make_dataset(
            small.images,
            small.labels,
            num_classes=10,
            batch_size=50,
            normalization="unit",
            **kwargs,
        )

    plain, _ = _first_batch(make())
    augmented = make(augment=True, seed=5)
    first, second = (x.numpy() for x, _ in augmented.repeat(2))
    assert first.shape == plain.shape == (50, 32, 32, 3)
    assert not np.allclose(first, plain) and not np.allclose(first, second)
    assert first.min() >= 0.0 and first.max() <= 1.0 and first.mean() > 0.8 * plain.mean()
    np.testing.assert_array_equal(first, _first_batch(make(augment=True, seed=5))[0])
    big, _ = _first_batch(make(augment=True, image_size=64))
    assert big.shape == (50, 64, 64, 3)


def test_make_dataset_shuffles_each_epoch(small):
    ds = data.make_dataset(small.images, small.labels, num_classes=10, batch_size=50, shuffle=True)
    first, second = (y.numpy().argmax(axis=1) for _, y in ds.repeat(2))
    assert not np.array_equal(first, second)
    assert sorted(first) == sorted(second) == sorted(small.labels)
    again = data.make_dataset(
        small.images, small.labels, num_classes=10, batch_size=50, shuffle=True
    )
    np.testing.assert_array_equal(_first_batch(again)[1].argmax(axis=1), first)


@pytest.mark.parametrize(
    ("kwargs", "received"),
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"image_size": 16}, "image_size=16"),
        ({"num_classes": 0}, "num_classes=0"),
        ({"normalization": "caffe"}, "normalization='caffe'"),
        ({"labels": np.zeros((50, 1), np.int64)}, r"labels.shape=\(50, 1\)"),
        ({"labels": np.zeros(49, np.int64)}, r"labels.shape=\(49,\)"),
        ({"images": np.zeros((50, 32, 32, 3), np.float32)}, "images.dtype=float32"),
    ],
)
def test_make_dataset_checks_arguments(small, kwargs, received):
    arguments = {"images": small.images, "labels": small.labels, "num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=f"Received: .*{received}"):
        data.make_dataset(**arguments)
