"""CIFAR-10 from disk: where it is (:func:`locate_cifar10`) and reading it (:func:`load_cifar10`).

Where CIFAR-10 comes from, in order (see :func:`locate_cifar10`):

1. the ``path`` argument;
2. the environment variable ``$TLCOURSE_DATA``;
3. the tlcourse cache (``$TLCOURSE_CACHE`` or ``~/.keras/tlcourse``);
4. a download of the official archive through :mod:`tlcourse.hub` (sha256 checked).

Accepted layouts at ``path`` or ``$TLCOURSE_DATA``:

* the official "python version": a ``cifar-10-batches-py/`` folder (``data_batch_1`` ..
  ``data_batch_5``, ``test_batch``, ``batches.meta``), or a folder holding one;
* the official archive ``cifar-10-python.tar.gz`` (read in memory, never extracted), or a
  folder holding it;
* an image-folder tree: ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``;
* such a tree in an archive (``.tar``, ``.tar.gz``/``.tgz``, ``.tar.xz``, ``.tar.bz2``,
  ``.zip``), possibly under one top folder (read in memory, never extracted), or a folder
  holding one such archive.

Images are kept as uint8 RGB, channels last, labels as int64 in the official class order
(``tlcourse.config.CIFAR10_CLASSES``). Pixel scaling happens once, in :func:`make_dataset`,
through :func:`tlcourse.preprocessing.normalize`.

The work is done by modules with one job each, whose public names this module re-exports (so
``from tlcourse.data import make_dataset`` works):

* :mod:`tlcourse.imageset`: :class:`ImageSet`, what every reader returns;
* :mod:`tlcourse.cifar10_python`: the official python layout, read with a restricted unpickler;
* :mod:`tlcourse.image_folder`: image-folder trees, from folders or archives;
* :mod:`tlcourse.archives`: tar and zip archives read in memory, never extracted;
* :mod:`tlcourse.pipeline`: seeded splits and ``tf.data`` pipelines.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from tlcourse.archives import (
    ARCHIVE_SUFFIXES,
    is_archive,
    member_parts,
    members,
    open_archive,
)
from tlcourse.cifar10_python import (
    CIFAR10_ARCHIVE,
    CIFAR10_FILES,
    CIFAR10_FOLDER,
    META_FILE,
    TEST_BATCH,
    TRAIN_BATCHES,
    is_batches_folder,
    load_cifar10_python,
)
from tlcourse.config import CIFAR10_CLASSES, DATA_ENV, cache_dir
from tlcourse.errors import DataFormatError, DataNotFoundError
from tlcourse.image_folder import (
    IMAGE_EXTENSIONS,
    image_tree,
    is_image_member,
    load_image_folder,
    read_tree,
)
from tlcourse.imageset import ImageSet
from tlcourse.pipeline import MIN_IMAGE_SIZE, make_dataset, stratified_split, take_per_class

__all__ = [
    "ARCHIVE_SUFFIXES",
    "CIFAR10_ARCHIVE",
    "CIFAR10_FILES",
    "CIFAR10_FOLDER",
    "CIFAR10_HUB_NAME",
    "IMAGE_EXTENSIONS",
    "META_FILE",
    "MIN_IMAGE_SIZE",
    "TEST_BATCH",
    "TRAIN_BATCHES",
    "ImageSet",
    "load_cifar10",
    "load_cifar10_python",
    "load_image_folder",
    "locate_cifar10",
    "make_dataset",
    "stratified_split",
    "take_per_class",
]

#: Name of the CIFAR-10 archive in the ``tlcourse.hub`` registry (file name, URL, sha256).
CIFAR10_HUB_NAME = "cifar10-python"
_SPLITS = ("train", "test")

_LAYOUTS = (
    "  - a `cifar-10-batches-py/` folder (data_batch_1..5, test_batch, batches.meta), "
    "or a folder holding one;\n"
    "  - the official archive `cifar-10-python.tar.gz`, or a folder holding it;\n"
    "  - an image-folder tree: `train/<class>/*.jpg` and `test/<class>/*.jpg`, "
    "one folder per class;\n"
    "  - such a tree in an archive (.tar, .tar.gz/.tgz, .tar.xz, .tar.bz2, .zip), maybe under "
    "one top folder, or a folder holding one such archive."
)


# --------------------------------------------------------------------------------------------
# Finding CIFAR-10
# --------------------------------------------------------------------------------------------


def _is_image_folder_root(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def _find_layout(path: Path, *, image_folders: bool = True) -> Path | None:
    """Return what :func:`load_cifar10` should read at ``path``, or None if nothing fits.

    ``image_folders=False`` (the cache) looks only for the python layout, by name.
    """
    if path.is_file():
        return path if is_archive(path) and _archive_info(path).kind else None
    if not path.is_dir():
        return None
    if is_batches_folder(path):
        return path
    if (path / CIFAR10_FOLDER).is_dir():
        return path / CIFAR10_FOLDER
    if (path / CIFAR10_ARCHIVE).is_file():
        return path / CIFAR10_ARCHIVE
    if not image_folders:
        return None
    if _is_image_folder_root(path):
        return path
    return _single_archive(path)


def _single_archive(folder: Path) -> Path | None:
    """The one archive in ``folder`` that holds CIFAR-10 or image folders, if any."""
    found = [
        p
        for p in sorted(folder.iterdir())
        if not p.name.startswith(".") and p.is_file() and is_archive(p) and _archive_info(p).kind
    ]
    if len(found) > 1:
        raise DataFormatError(
            f"{folder} holds several archives of images: {', '.join(p.name for p in found)}. "
            f"Pass the one to read (as `path`, `--data` or ${DATA_ENV}). "
            f"Received: path={str(folder)!r}"
        )
    return found[0] if found else None


def _first_names(names: Sequence[str], limit: int) -> str:
    """The first ``limit`` names, comma-separated, then how many there are if more."""
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _describe(path: Path, limit: int = 10) -> str:
    if path.is_file():
        if not is_archive(path):
            return f"a file of {path.stat().st_size} bytes"
        top = _archive_info(path).top
        shown = _first_names(top, limit)
        return f"an archive of {path.stat().st_size} bytes holding: {shown or 'nothing'}"
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    if not entries:
        return "an empty folder"
    return f"a folder holding: {_first_names(entries, limit)}"


def _resolve_given(path: Path, source: str) -> Path:
    if not path.exists():
        raise DataNotFoundError(
            f"CIFAR-10 was looked for at {path} ({source}), which does not exist. "
            f"Point it at one of:\n{_LAYOUTS}\nReceived: path={str(path)!r}"
        )
    found = _find_layout(path)
    if found is None:
        raise DataFormatError(
            f"{path} ({source}) holds no CIFAR-10 layout: it is {_describe(path)}. "
            f"Expected one of:\n{_LAYOUTS}\nReceived: path={str(path)!r}"
        )
    return found


def locate_cifar10(
    path: str | os.PathLike | None = None,
    *,
    download: bool = True,
    origin: str | None = None,
) -> Path:
    """Find CIFAR-10: ``path``, then ``$TLCOURSE_DATA``, then the cache, then a download.

    Args:
        path: a ``cifar-10-batches-py`` folder, a folder holding one, the official
            ``cifar-10-python.tar.gz`` or a folder holding it, an image-folder root
            (``train/`` and ``test/``, one sub-folder per class), or an archive of one (or a
            folder holding exactly one such archive). Archives are told apart by their
            member names. Defaults to None (look in ``$TLCOURSE_DATA``, then the cache).
        download: whether to download the official archive when nothing is found locally.
            Defaults to True.
        origin: URL to download from instead of the official one. Defaults to None.

    Returns:
        The path :func:`load_cifar10` reads: a batches folder, an archive or an image-folder root.

    Raises:
        DataNotFoundError: nothing found (and no download, or the download failed).
        DataFormatError: ``path`` or ``$TLCOURSE_DATA`` exists but holds none of the layouts.
    """
    if path is not None:
        return _resolve_given(Path(path).expanduser(), "the `path` argument")
    env = os.environ.get(DATA_ENV)
    if env:
        return _resolve_given(Path(env).expanduser(), f"${DATA_ENV}")
    cache = cache_dir()
    found = _find_layout(cache, image_folders=False)
    if found is not None:
        return found

    from tlcourse import hub  # deferred; its registry holds the official URL and sha256

    url = origin or hub.REGISTRY[CIFAR10_HUB_NAME].origin
    looked = (
        f"${DATA_ENV} (not set) and the cache {cache} (no {CIFAR10_FOLDER}/ nor {CIFAR10_ARCHIVE})"
    )
    advice = f"Set the environment variable {DATA_ENV} (or pass `path=`) to one of:\n{_LAYOUTS}"
    if not download:
        raise DataNotFoundError(
            f"CIFAR-10 was not found. Looked in {looked}. Downloading is off (download=False); "
            f"with download=True it would fetch {url}. {advice}"
        )
    try:
        return hub.fetch(
            CIFAR10_HUB_NAME,
            origin=origin,
            hint=f"Or set {DATA_ENV} to a CIFAR-10 copy you already have.",
        )
    except DataNotFoundError as err:
        raise DataNotFoundError(
            f"CIFAR-10 was not found and its download from {url} failed. Looked in {looked}. "
            f"{advice}\nDownload error: {err}"
        ) from err


# --------------------------------------------------------------------------------------------
# Which layout an archive holds
# --------------------------------------------------------------------------------------------


class _ArchiveInfo(NamedTuple):
    kind: str | None  # "python" (cifar-10-batches-py), "images" (train/ and test/) or None
    top: tuple[str, ...]  # first-level entries seen, folders ending in "/"


_ARCHIVE_INFO: dict[tuple[str, int, int], _ArchiveInfo] = {}


def _archive_info(archive: Path) -> _ArchiveInfo:
    """What ``archive`` holds, from its member names; remembered per path, size and mtime."""
    stat = archive.stat()
    key = (str(archive.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _ARCHIVE_INFO:
        _ARCHIVE_INFO[key] = _scan_archive(archive)
    return _ARCHIVE_INFO[key]


def _scan_archive(archive: Path) -> _ArchiveInfo:
    """Read member names until the layout is clear (a zip's names cost no decompression)."""
    splits_seen: dict[tuple[str, ...], set[str]] = {}
    top: dict[str, None] = {}
    kind = None
    with open_archive(archive) as handle:
        is_tar = isinstance(handle, tarfile.TarFile)
        for name, what, _ in members(handle):
            parts = member_parts(archive, name)
            if parts is None:
                continue
            top[parts[0] + ("/" if len(parts) > 1 or what == "dir" else "")] = None
            if is_tar and (
                CIFAR10_FOLDER in parts or (what == "file" and parts[-1] in CIFAR10_FILES)
            ):
                kind = "python"
                break
            if what == "file" and is_image_member(parts, _SPLITS):
                seen = splits_seen.setdefault(parts[:-3], set())
                seen.add(parts[-3])
                if len(seen) == len(_SPLITS):
                    kind = "images"
                    break
    return _ArchiveInfo(kind, tuple(sorted(top)))


# --------------------------------------------------------------------------------------------
# Reading CIFAR-10
# --------------------------------------------------------------------------------------------


def load_cifar10(
    path: str | os.PathLike | None = None,
    *,
    download: bool = True,
    origin: str | None = None,
) -> tuple[ImageSet, ImageSet]:
    """Load CIFAR-10 as ``(train, test)`` from wherever :func:`locate_cifar10` finds it.

    Args:
        path: where to look first; see :func:`locate_cifar10`. Defaults to None.
        download: download the official archive if nothing is found. Defaults to True.
        origin: URL to download from instead of the official one. Defaults to None.

    Returns:
        ``(train, test)`` image sets with classes in the official order (``CIFAR10_CLASSES``).
    """
    found = locate_cifar10(path, download=download, origin=origin)
    if found.is_dir():
        images = not is_batches_folder(found) and _is_image_folder_root(found)
    else:
        images = is_archive(found) and _archive_info(found).kind == "images"
    if not images:
        return load_cifar10_python(found)
    kwargs = {"splits": _SPLITS, "class_names": CIFAR10_CLASSES}
    with image_tree(found, **kwargs, limit=None) as tree:
        for split in _SPLITS:
            names = set(tree.dirs(split))
            if names != set(CIFAR10_CLASSES):
                raise DataFormatError(
                    f"{tree.where(split)} has the class folders {sorted(names)}, but CIFAR-10 "
                    f"needs exactly {list(CIFAR10_CLASSES)}. For other classes use "
                    "tlcourse.data.load_image_folder."
                )
        sets = read_tree(tree, _SPLITS, CIFAR10_CLASSES, (32, 32), None)
    return sets["train"], sets["test"]
