"""Shared fixtures: real CIFAR-10 and real SqueezeNet weights from ``../shared``.

CI has ``../shared``; a missing folder is an error, never a skip. Building the official
python layout takes about 20 s, so it happens once per session; point
``TLCOURSE_TEST_CIFAR_ROOT`` at a folder made earlier with
``../shared/data/make-cifar10-python DIR --tar-gz`` to reuse one. The data tests share the
sets read from it (``folder_sets``, ``archive_sets``, ``image_sets``), also once per session.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from data_files import make_archive, snapshot
from PIL import Image

from tlcourse.cifar10_python import load_cifar10_python
from tlcourse.config import CACHE_ENV, DATA_ENV
from tlcourse.image_folder import load_image_folder
from tlcourse.imageset import ImageSet

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TLCOURSE_SHARED", PROJECT_ROOT.parent / "shared"))


def _require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing. The tests read real data from ../shared beside the checkout "
            "(or the folder named by TLCOURSE_SHARED); see ../shared/README.md."
        )
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def weights_npz(shared_dir: Path) -> Path:
    return _require(shared_dir / "weights" / "squeezenet1_1_imagenet.npz")


@pytest.fixture(scope="session")
def cifar10_root(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``cifar-10-batches-py/`` and ``cifar-10-python.tar.gz`` (real data)."""
    reuse = os.environ.get("TLCOURSE_TEST_CIFAR_ROOT")
    if reuse:
        return _require(Path(reuse) / "cifar-10-batches-py").parent
    out = tmp_path_factory.mktemp("cifar10")
    script = _require(shared_dir / "data" / "make-cifar10-python")
    subprocess.run([sys.executable, str(script), str(out), "--tar-gz"], check=True)
    return out


@pytest.fixture(scope="session")
def image_folder_root(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real CIFAR-10 JPEGs as ``<split>/<class>/NNNN.jpg``: 20 a class in train, 10 in test."""
    archive = _require(shared_dir / "data" / "cifar10-jpeg.tar.xz")
    out = tmp_path_factory.mktemp("imagefolder")
    keep = {"train": 20, "test": 10}
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 3 and int(parts[2][:4]) < keep[parts[0]]:
                tar.extract(member, out, filter="data")
    return out


# --------------------------------------------------------------------------------------------
# CIFAR-10 read once per session, for the data tests (and the sources' state before that)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sources_before(cifar10_root: Path, image_folder_root: Path) -> dict[str, tuple[int, int]]:
    """The source folders' files, sizes and times before any loader read them."""
    return snapshot(cifar10_root, image_folder_root)


@pytest.fixture(scope="session")
def small_split(cifar10_root: Path) -> tuple[ImageSet, ImageSet]:
    """100 real training images a class, split 80/20 stratified (seed 0)."""
    from tlcourse.data import load_cifar10, stratified_split, take_per_class

    train, _test = load_cifar10(cifar10_root / "cifar-10-batches-py")
    subset = train.subset(take_per_class(train.labels, 100, seed=0))
    train_idx, val_idx = stratified_split(subset.labels, 0.2, seed=0)
    return subset.subset(train_idx), subset.subset(val_idx)


@pytest.fixture(scope="session")
def batches_dir(cifar10_root: Path) -> Path:
    return cifar10_root / "cifar-10-batches-py"


@pytest.fixture(scope="session")
def archive(cifar10_root: Path) -> Path:
    return cifar10_root / "cifar-10-python.tar.gz"


@pytest.fixture(scope="session")
def folder_sets(sources_before, batches_dir: Path) -> tuple[ImageSet, ImageSet]:
    return load_cifar10_python(batches_dir)


@pytest.fixture(scope="session")
def archive_sets(sources_before, archive: Path) -> tuple[ImageSet, ImageSet]:
    return load_cifar10_python(archive)


@pytest.fixture(scope="session")
def image_sets(sources_before, image_folder_root: Path) -> dict[str, ImageSet]:
    return load_image_folder(image_folder_root)


@pytest.fixture(scope="session")
def raw_test_batch(batches_dir: Path) -> dict:
    """``test_batch`` read the plain Keras way (trusted here: the fixture's own real file)."""
    with open(batches_dir / "test_batch", "rb") as f:
        return pickle.load(f, encoding="bytes")


@pytest.fixture(scope="session")
def small_archives(sources_before, image_folder_root: Path, tmp_path_factory) -> dict[str, Path]:
    """The ``image_folder_root`` fixture packed under a top folder as .zip and .tar.gz."""
    out = tmp_path_factory.mktemp("archives")
    return {
        suffix: make_archive(image_folder_root, out / f"images{suffix}")
        for suffix in (".zip", ".tar.gz")
    }


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $TLCOURSE_DATA and an empty cache; returns the cache folder."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No test reads the user's TLCOURSE_* settings or writes into ~/.keras."""
    for name in ("TLCOURSE_DATA", "TLCOURSE_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TLCOURSE_CACHE", str(tmp_path_factory.mktemp("cache")))


#: The flowers' classes, in label order (sorted folder names).
FLOWER_CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")


def _take(archive: Path, target: Path, per_split: dict[str, int]) -> Path:
    """The first files of each class of each split of the flowers archive, as a folder."""
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[1] not in per_split:
                continue
            key = (parts[1], parts[2])
            if taken.get(key, 0) >= per_split[parts[1]]:
                continue
            taken[key] = taken.get(key, 0) + 1
            out = target.joinpath(*parts[1:])
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tar.extractfile(member).read())
    return target


@pytest.fixture(scope="session")
def flowers_small(shared_dir: Path, tmp_path_factory) -> Path:
    """train/ (8 a class) and val/ (4 a class) of real flower photos; some PNG, GIF, BMP."""
    root = _take(
        shared_dir / "data" / "flowers-256.tar",
        tmp_path_factory.mktemp("flowers") / "flowers",
        {"train": 8, "val": 4},
    )
    for suffix, cls in ((".png", "daisy"), (".gif", "roses"), (".bmp", "tulips")):
        jpeg = sorted((root / "train" / cls).glob("*.jpg"))[0]
        Image.open(jpeg).save(jpeg.with_suffix(suffix))
        jpeg.unlink()
    return root


from grading_fixtures import fresh_course, graded_course  # noqa: E402, F401  (shared courses)
