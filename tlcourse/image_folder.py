"""Image-folder trees, ``<root>/<split>/<class>/<image>``, from a folder or an archive.

:func:`load_image_folder` reads one :class:`~tlcourse.imageset.ImageSet` per split. A folder on
disk and an archive (read in memory through :mod:`tlcourse.archives`, never extracted) are two
kinds of tree with the same small interface, so one function, :func:`read_tree`, checks and
decodes both.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tlcourse.archives import (
    ARCHIVE_SUFFIXES,
    is_archive,
    member_parts,
    members,
    open_archive,
)
from tlcourse.config import CIFAR10_CLASSES
from tlcourse.errors import DataFormatError, DataNotFoundError
from tlcourse.imageset import ImageSet

#: File extensions :func:`load_image_folder` reads (compared in lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
#: Opens one image file for reading: a file on disk or an archive member's bytes.
_Opener = Callable[[], IO[bytes]]


def _visible_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def is_image_member(parts: tuple[str, ...], splits: Sequence[str]) -> bool:
    """Whether a member's ``parts`` are ``[<top>/]<split>/<class>/<image>``, split in ``splits``."""
    return len(parts) in (3, 4) and parts[-3] in splits and _is_image_name(parts[-1])


def _image_files(folder: Path) -> list[Path]:
    files = (p for p in folder.iterdir() if p.is_file() and _is_image_name(p.name))
    return sorted(files, key=lambda p: p.name)


class _FolderTree:
    """An image-folder root on disk: ``root/<split>/<class>/<image>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def where(self, *parts: str) -> str:
        return str(self.root.joinpath(*parts))

    def is_dir(self, *parts: str) -> bool:
        return self.root.joinpath(*parts).is_dir()

    def dirs(self, *parts: str) -> list[str]:
        folder = self.root.joinpath(*parts)
        return _visible_dirs(folder) if folder.is_dir() else []

    def images(self, *parts: str) -> list[tuple[str, _Opener]]:
        return [(str(f), partial(open, f, "rb")) for f in _image_files(self.root.joinpath(*parts))]


class _ArchiveTree:
    """An image-folder root inside an archive, maybe under one top folder (``prefix``).

    ``folders`` maps every folder (a tuple of names) to its visible sub-folders; ``files`` maps a
    class folder to ``{file name: opener}`` for the image members kept while reading.
    """

    def __init__(
        self,
        archive: Path,
        folders: dict[tuple[str, ...], set[str]],
        files: dict[tuple[str, ...], dict[str, _Opener]],
        prefix: tuple[str, ...],
    ) -> None:
        self.archive, self.folders, self.files, self.prefix = archive, folders, files, prefix

    def where(self, *parts: str) -> str:
        inside = "/".join(self.prefix + parts)
        return f"{self.archive}:{inside}" if inside else str(self.archive)

    def is_dir(self, *parts: str) -> bool:
        return self.prefix + parts in self.folders

    def dirs(self, *parts: str) -> list[str]:
        return sorted(self.folders.get(self.prefix + parts, ()))

    def images(self, *parts: str) -> list[tuple[str, _Opener]]:
        entries = self.files.get(self.prefix + parts, {})
        return [(self.where(*parts, name), entries[name]) for name in sorted(entries)]


#: An image-folder root, on disk or in an archive, as :func:`image_tree` yields it.
ImageTree = _FolderTree | _ArchiveTree


@contextlib.contextmanager
def _archive_tree(
    archive: Path,
    *,
    splits: Sequence[str],
    class_names: Sequence[str] | None,
    limit: int | None,
) -> Iterator[_ArchiveTree]:
    """Read an archive's folders and image members in one pass, in memory.

    A tar is read sequentially once: the bytes of the images that may be loaded (their split
    and class wanted, and among the first ``limit`` names of their folder) are kept, nothing
    else. A zip is read lazily, member by member, while the tree is in use.
    """
    folders: dict[tuple[str, ...], set[str]] = {(): set()}
    files: dict[tuple[str, ...], dict[str, _Opener]] = {}
    kept: dict[tuple[str, ...], list[str]] = {}  # per folder, the names holding bytes, sorted
    wanted = None if class_names is None else set(class_names)
    with open_archive(archive) as handle:
        is_zip = isinstance(handle, zipfile.ZipFile)
        for name, what, member in members(handle):
            parts = member_parts(archive, name)
            if parts is None or what == "other":
                continue
            for i in range(len(parts) if what == "dir" else len(parts) - 1):
                folders.setdefault(parts[:i], set()).add(parts[i])
                folders.setdefault(parts[: i + 1], set())
            if (
                what != "file"
                or not is_image_member(parts, splits)
                or (wanted is not None and parts[-2] not in wanted)
            ):
                continue
            folder, file = parts[:-1], parts[-1]
            entries = files.setdefault(folder, {})
            if is_zip:
                entries[file] = partial(_zip_member, handle, member)
                continue
            names = kept.setdefault(folder, [])
            if file not in entries:
                if limit is not None and len(names) >= limit and file > names[-1]:
                    continue  # sorts after the first `limit` names: never read
                bisect.insort(names, file)
                if limit is not None and len(names) > limit:
                    del entries[names.pop()]
            stream = handle.extractfile(member)
            assert stream is not None  # a regular file always has a stream
            entries[file] = partial(io.BytesIO, stream.read())
        top = folders[()]
        single = len(top) == 1 and not any(split in top for split in splits)
        yield _ArchiveTree(archive, folders, files, (next(iter(top)),) if single else ())


def _zip_member(handle: zipfile.ZipFile, info: zipfile.ZipInfo) -> IO[bytes]:
    return io.BytesIO(handle.read(info))


@contextlib.contextmanager
def image_tree(
    root: Path,
    *,
    splits: Sequence[str],
    class_names: Sequence[str] | None,
    limit: int | None,
) -> Iterator[ImageTree]:
    """Open ``root`` (a folder, or an archive read in memory) as a tree for :func:`read_tree`.

    For an archive, only the images of ``splits`` and ``class_names`` (all classes if None),
    the first ``limit`` of each folder (all if None), are kept.
    """
    if root.is_dir():
        yield _FolderTree(root)
    elif root.is_file() and is_archive(root):
        with _archive_tree(root, splits=splits, class_names=class_names, limit=limit) as tree:
            yield tree
    elif root.exists():
        raise DataFormatError(
            f"{root} is neither a folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)}). "
            "Expected `<root>/<split>/<class>/<image>`, as folders or in an archive. "
            f"Received: root={str(root)!r}"
        )
    else:
        raise DataNotFoundError(
            f"{root} does not exist. Expected a folder or an archive holding "
            f"`<split>/<class>/<image>` with the splits {tuple(splits)}. "
            f"Received: root={str(root)!r}"
        )


def _read_image(
    where: str,
    opener: _Opener,
    expected: tuple[int, int] | None,
    first: str | None,
    resize: bool = False,
) -> np.ndarray:
    try:
        stream = opener()
    except OSError as err:
        raise DataFormatError(
            f"{where} could not be read ({type(err).__name__}: {err}). Replace or delete it."
        ) from err
    with stream:
        try:
            image = Image.open(stream)
        except (UnidentifiedImageError, OSError) as err:
            raise DataFormatError(
                f"{where} could not be read as an image ({type(err).__name__}: {err}). "
                "Replace or delete it."
            ) from err
        with image:
            size = (image.height, image.width)
            if resize and expected is not None and size != expected:
                # Shorter side to fit, then the centre cut to the target's aspect ratio.
                image = ImageOps.fit(
                    image.convert("RGB"), expected[::-1], Image.Resampling.BILINEAR
                )
                size = expected
            if expected is not None and size != expected:
                against = f"the first image, {first}," if first else "`image_size`"
                raise DataFormatError(
                    f"{where} is {size[0]}x{size[1]} (height x width) but {against} is "
                    f"{expected[0]}x{expected[1]}; every image must have the same size. Pass "
                    "`image_size=(height, width)` to resize them as they load."
                )
            try:
                rgb = image if image.mode == "RGB" else image.convert("RGB")
                return np.asarray(rgb, dtype=np.uint8)
            except (OSError, SyntaxError, ValueError) as err:
                raise DataFormatError(
                    f"{where} could not be decoded ({type(err).__name__}: {err}). "
                    "Replace or delete it."
                ) from err


def read_tree(
    tree: ImageTree,
    splits: Sequence[str],
    class_names: Sequence[str] | None,
    image_size: tuple[int, int] | None,
    limit_per_class: int | None,
    *,
    resize: bool = False,
) -> dict[str, ImageSet]:
    """Check an image-folder tree and decode its images: the one reader of folders and archives.

    With ``resize``, images of another size than ``image_size`` are resized to it (shorter side,
    then a centre crop); without, they are refused.
    """
    missing_splits = [s for s in splits if not tree.is_dir(s)]
    if missing_splits:
        raise DataFormatError(
            f"{tree.where()} has no split folder {', '.join(missing_splits)} (it holds "
            f"{tree.dirs()}). Expected `<root>/<split>/<class>/<image>` for the splits "
            f"{tuple(splits)}; pass `splits=` to read others."
        )

    found = {split: tree.dirs(split) for split in splits}
    if class_names is None:
        names = set().union(*found.values())
        ordered = CIFAR10_CLASSES if names == set(CIFAR10_CLASSES) else tuple(sorted(names))
    else:
        ordered = tuple(class_names)
    if not ordered:
        raise DataFormatError(
            f"{tree.where()} has no class folders under {', '.join(splits)}. "
            "Expected `<root>/<split>/<class>/<image>`, one folder per class."
        )
    for split in splits:
        absent = [c for c in ordered if c not in found[split]]
        if absent:
            raise DataFormatError(
                f"Split {split!r} has no folder for the class(es) {', '.join(absent)} "
                f"(looked in {tree.where(split)}). Every split needs the same classes: add "
                f"{tree.where(split, absent[0])}/ with images, or remove that class from the "
                "other splits (or pass `class_names=`)."
            )

    listing: dict[str, list[tuple[str, _Opener, int]]] = {}
    for split in splits:
        listing[split] = []
        for label, name in enumerate(ordered):
            files = tree.images(split, name)
            if not files:
                raise DataFormatError(
                    f"Class {name!r} of split {split!r} has no images ({tree.where(split, name)} "
                    f"holds no {'/'.join(IMAGE_EXTENSIONS)} file). Add images or remove the "
                    "class folder from every split."
                )
            listing[split].extend(
                (where, opener, label) for where, opener in files[:limit_per_class]
            )

    expected, first = image_size, None
    result = {}
    for split in splits:
        images = None
        labels = np.array([label for _, _, label in listing[split]], dtype=np.int64)
        for i, (where, opener, _) in enumerate(listing[split]):
            pixels = _read_image(where, opener, expected, first, resize)
            if expected is None:
                expected, first = pixels.shape[:2], where
            if images is None:
                images = np.empty((len(labels), *expected, 3), dtype=np.uint8)
            images[i] = pixels
        result[split] = ImageSet(images, labels, ordered)
    return result


def load_image_folder(
    root: str | os.PathLike,
    *,
    splits: Sequence[str] = ("train", "test"),
    class_names: Sequence[str] | None = None,
    image_size: tuple[int, int] | None = None,
    limit_per_class: int | None = None,
) -> dict[str, ImageSet]:
    """Read images laid out as ``root/<split>/<class>/<file>`` into one ImageSet per split.

    ``root`` is a folder, or an archive of one (``.tar``, ``.tar.gz``/``.tgz``, ``.tar.xz``,
    ``.tar.bz2``, ``.zip``) whose members are ``<split>/<class>/<file>``, possibly all under
    one top folder. Archives are read in memory, never extracted; members with absolute paths
    or ``..`` are refused.

    Files ending ``.jpg``, ``.jpeg``, ``.png``, ``.gif`` (first frame) or ``.bmp`` (any case) are
    read with Pillow and converted to RGB; other files and hidden entries are skipped. Files are
    taken in name order.

    Args:
        root: the folder (or archive) holding one sub-folder per split.
        splits: the split folders to read. Defaults to ``("train", "test")``.
        class_names: the classes to read, in label order. Defaults to None: the class folders
            found, in CIFAR-10's official order if they are its ten classes, else sorted.
            When given, other class folders are ignored.
        image_size: the ``(height, width)`` to resize every image to (shorter side to fit,
            then a centre crop to that aspect ratio, bilinear). Defaults to None: every image
            must have the size of the first one read, and none is resized. For photos of
            mixed sizes larger than memory, stream them instead: :mod:`tlcourse.photos`.
        limit_per_class: read only the first N files of each class (quick runs); the others
            are never decoded. Defaults to None (all).

    Returns:
        ``{split: ImageSet}`` with the same ``class_names`` in every split.

    Raises:
        DataNotFoundError: ``root`` does not exist.
        DataFormatError: ``root`` is neither a folder nor an archive, the archive is damaged or
            holds an unsafe member name, a split or class folder is missing or empty, an image
            is unreadable or of another size.
    """
    root = Path(root).expanduser()
    if isinstance(splits, str) or not splits:
        raise ValueError(
            f"`splits` must be a non-empty sequence of folder names, e.g. ('train', 'test'). "
            f"Received: splits={splits!r}"
        )
    if limit_per_class is not None and (
        not isinstance(limit_per_class, int) or limit_per_class < 1
    ):
        raise ValueError(
            f"`limit_per_class` must be None or a positive integer. "
            f"Received: limit_per_class={limit_per_class!r}"
        )
    if image_size is not None:
        size = tuple(image_size) if isinstance(image_size, Sequence) else ()
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(
                "`image_size` must be None or (height, width), two positive integers. "
                f"Received: image_size={image_size!r}"
            )
        image_size = (size[0], size[1])
    if class_names is not None and (
        isinstance(class_names, str) or not class_names or len(set(class_names)) != len(class_names)
    ):
        raise ValueError(
            "`class_names` must be distinct folder names, at least one. "
            f"Received: class_names={class_names!r}"
        )
    with image_tree(root, splits=splits, class_names=class_names, limit=limit_per_class) as tree:
        return read_tree(
            tree, splits, class_names, image_size, limit_per_class, resize=image_size is not None
        )
