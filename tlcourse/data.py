"""CIFAR-10 and image folders from disk, splits, and ``tf.data`` pipelines.

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
"""

from __future__ import annotations

import bisect
import contextlib
import io
import lzma
import os
import pickle
import re
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from tlcourse.config import CIFAR10_CLASSES, DATA_ENV, cache_dir
from tlcourse.errors import DataFormatError, DataNotFoundError, TLCourseError
from tlcourse.preprocessing import check_normalization, normalize, one_hot

if TYPE_CHECKING:
    import tensorflow as tf

#: Name of the CIFAR-10 archive in the ``tlcourse.hub`` registry (file name, URL, sha256).
CIFAR10_HUB_NAME = "cifar10-python"
#: Names used by the official python layout.
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_BATCHES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
#: File extensions :func:`load_image_folder` reads (compared in lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")
#: Archive names read as image folders (compared in lower case); tars are opened by content.
ARCHIVE_SUFFIXES: tuple[str, ...] = (
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.xz",
    ".txz",
    ".tar.bz2",
    ".tbz2",
    ".tbz",
    ".zip",
)
_SPLITS = ("train", "test")
#: Smallest side SqueezeNet 1.1 accepts: its stride-2 stem and three 3x3 stride-2 max pools
#: ("valid") need at least 31 pixels, so 32 is the smallest size worth asking for.
MIN_IMAGE_SIZE = 32

_LAYOUTS = (
    "  - a `cifar-10-batches-py/` folder (data_batch_1..5, test_batch, batches.meta), "
    "or a folder holding one;\n"
    "  - the official archive `cifar-10-python.tar.gz`, or a folder holding it;\n"
    "  - an image-folder tree: `train/<class>/*.jpg` and `test/<class>/*.jpg`, "
    "one folder per class;\n"
    "  - such a tree in an archive (.tar, .tar.gz/.tgz, .tar.xz, .tar.bz2, .zip), maybe under "
    "one top folder, or a folder holding one such archive."
)
_REDOWNLOAD = (
    "The file is damaged or incomplete: delete it and download CIFAR-10 again "
    "(or re-run the tool that wrote it)."
)


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images with their integer labels and the class names the labels index.

    Attributes:
        images: uint8 array ``(N, H, W, 3)``, RGB, channels last.
        labels: int64 array ``(N,)``; ``labels[i]`` indexes ``class_names``.
        class_names: the class of each label id, in label order.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(
                "`images` must be a uint8 array of shape (N, H, W, 3). "
                f"Received: shape={self.images.shape}, dtype={self.images.dtype}"
            )
        if self.labels.shape != (len(self.images),):
            raise ValueError(
                f"`labels` must have shape ({len(self.images)},), one per image. "
                f"Received: shape={self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(class_names)``."""
        return len(self.class_names)

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageSet:
        """Return the images at ``indices`` (integer indices or a boolean mask), as a copy."""
        indices = np.asarray(indices)
        return ImageSet(self.images[indices], self.labels[indices], self.class_names)


# --------------------------------------------------------------------------------------------
# Finding CIFAR-10
# --------------------------------------------------------------------------------------------


def _is_batches_folder(folder: Path) -> bool:
    if folder.name == CIFAR10_FOLDER:
        return True
    names = (META_FILE, TEST_BATCH, *TRAIN_BATCHES)
    return any((folder / name).is_file() for name in names)


def _is_image_folder_root(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def _find_layout(path: Path, *, image_folders: bool = True) -> Path | None:
    """Return what :func:`load_cifar10` should read at ``path``, or None if nothing fits.

    ``image_folders=False`` (the cache) looks only for the python layout, by name.
    """
    if path.is_file():
        return path if _is_archive(path) and _archive_info(path).kind else None
    if not path.is_dir():
        return None
    if _is_batches_folder(path):
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
        if not p.name.startswith(".") and p.is_file() and _is_archive(p) and _archive_info(p).kind
    ]
    if len(found) > 1:
        raise DataFormatError(
            f"{folder} holds several archives of images: {', '.join(p.name for p in found)}. "
            f"Pass the one to read (as `path`, `--data` or ${DATA_ENV}). "
            f"Received: path={str(folder)!r}"
        )
    return found[0] if found else None


def _describe(path: Path, limit: int = 10) -> str:
    if path.is_file():
        if not _is_archive(path):
            return f"a file of {path.stat().st_size} bytes"
        top = _archive_info(path).top
        shown = ", ".join(top[:limit]) + (f", ... ({len(top)} in all)" if len(top) > limit else "")
        return f"an archive of {path.stat().st_size} bytes holding: {shown or 'nothing'}"
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    if not entries:
        return "an empty folder"
    shown = ", ".join(entries[:limit]) + (
        f", ... ({len(entries)} in all)" if len(entries) > limit else ""
    )
    return f"a folder holding: {shown}"


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
# The official python layout
# --------------------------------------------------------------------------------------------


def _numpy_core(module: str, name: str) -> Any:
    """``numpy.core.<module>.<name>``, found under ``numpy._core`` on numpy 2."""
    import importlib

    try:
        found = importlib.import_module(f"numpy._core.{module}")  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        found = importlib.import_module(f"numpy.core.{module}")
    return getattr(found, name)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What Python 3 pickles (protocol < 3) write for ``bytes``: ``_codecs.encode(s, 'latin1')``."""
    if encoding not in ("latin1", "latin-1"):
        raise DataFormatError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that builds only what the CIFAR-10 pickles hold: dicts, lists, bytes, arrays.

    The pickles are untrusted input, so any other global (``os.system`` ...) is refused. The
    official files (Python 2, protocol 2) name ``numpy.core.multiarray._reconstruct``, which
    numpy 2 moved to ``numpy._core``; pickles re-saved by Python 3 may also name
    ``numpy._core.numeric._frombuffer`` (protocol 5) or ``_codecs.encode`` (bytes, protocol 2).
    """

    _ALLOWED: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: _latin1_encode,
        **{
            (f"numpy{core}.{module}", name): (lambda m=module, n=name: _numpy_core(m, n))
            for core in (".core", "._core")
            for module, name in (("multiarray", "_reconstruct"), ("numeric", "_frombuffer"))
        },
    }

    def find_class(self, module: str, name: str) -> Any:
        factory = self._ALLOWED.get((module, name))
        if factory is None:
            raise DataFormatError(
                f"refused to load the global {module}.{name}: CIFAR-10 pickles only hold "
                "dicts, lists, bytes and numpy arrays, so this file is not one of them"
            )
        return factory()


def _unpickle(stream: IO[bytes], where: str) -> Any:
    try:
        return _CifarUnpickler(stream, encoding="bytes").load()
    except DataFormatError as err:
        raise DataFormatError(f"{where}: {err}. {_REDOWNLOAD}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
        MemoryError,
        zlib.error,
        tarfile.TarError,
        OSError,
    ) as err:
        raise DataFormatError(
            f"{where} could not be read as a CIFAR-10 pickle ({type(err).__name__}: {err}). "
            f"{_REDOWNLOAD}"
        ) from err


def _check_meta(meta: Any, where: str) -> None:
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    try:
        decoded = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    except (TypeError, UnicodeDecodeError):
        decoded = None
    if decoded != CIFAR10_CLASSES:
        raise DataFormatError(
            f"{where} lists the classes {decoded!r}, but CIFAR-10's official order is "
            f"{CIFAR10_CLASSES!r}. This is not the official CIFAR-10 python layout: "
            f"{_REDOWNLOAD}"
        )


def _batch_arrays(batch: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataFormatError(
            f"{where} should hold a dict with keys b'data' and b'labels'. Received: {keys}. "
            f"{_REDOWNLOAD}"
        )
    data = batch[b"data"]
    labels = np.asarray(batch[b"labels"])
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
    ):
        shape, dtype = getattr(data, "shape", None), getattr(data, "dtype", type(data).__name__)
        raise DataFormatError(
            f"{where}: b'data' should be a uint8 array of shape (N, 3072) (32x32 pixels, "
            f"3 colour planes). Received: shape={shape}, dtype={dtype}. {_REDOWNLOAD}"
        )
    if (
        labels.shape != (len(data),)
        or not np.issubdtype(labels.dtype, np.integer)
        or (labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)))
    ):
        raise DataFormatError(
            f"{where}: b'labels' should be {len(data)} integers in [0, 9], one per image. "
            f"Received: shape={labels.shape}, dtype={labels.dtype}. {_REDOWNLOAD}"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int64)


def _read_python_folder(folder: Path) -> dict[str, Any]:
    wanted = (*TRAIN_BATCHES, TEST_BATCH, META_FILE)
    missing = [name for name in wanted if not (folder / name).is_file()]
    if missing:
        raise DataFormatError(
            f"{folder} is missing {', '.join(missing)} of the official CIFAR-10 python layout "
            f"({', '.join(wanted)}). Download CIFAR-10 again, or re-run the tool that wrote it."
        )
    pickles = {}
    for name in wanted:
        with open(folder / name, "rb") as f:
            pickles[name] = _unpickle(f, str(folder / name))
    return pickles


def _read_python_archive(archive: Path) -> dict[str, Any]:
    wanted = (*TRAIN_BATCHES, TEST_BATCH, META_FILE)
    pickles: dict[str, Any] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in wanted and name not in pickles:
                    stream = tar.extractfile(member)
                    assert stream is not None  # a regular file always has a stream
                    pickles[name] = _unpickle(stream, f"{archive}:{member.name}")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataFormatError(
            f"{archive} is not a complete tar archive ({type(err).__name__}: {err}). {_REDOWNLOAD}"
        ) from err
    missing = [name for name in wanted if name not in pickles]
    if missing:
        raise DataFormatError(
            f"{archive} lacks {', '.join(missing)} of the official CIFAR-10 python layout "
            f"({CIFAR10_FOLDER}/{{{', '.join(wanted)}}}). {_REDOWNLOAD}"
        )
    return pickles


def load_cifar10_python(path: str | os.PathLike) -> tuple[ImageSet, ImageSet]:
    """Read CIFAR-10's official python layout: a batches folder or ``cifar-10-python.tar.gz``.

    The archive is read in memory, never extracted. The pickles are untrusted input and are
    read with an unpickler that builds nothing but dicts, lists, bytes and numpy arrays.

    Args:
        path: a ``cifar-10-batches-py`` folder, a folder holding one, or the ``.tar.gz``.

    Returns:
        ``(train, test)``: 50,000 and 10,000 images of 32x32, classes in official order.

    Raises:
        DataNotFoundError: ``path`` does not exist.
        DataFormatError: a file is missing, truncated, corrupt or of the wrong shape.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataNotFoundError(
            f"{path} does not exist. Pass a `{CIFAR10_FOLDER}` folder or `{CIFAR10_ARCHIVE}`. "
            f"Received: path={str(path)!r}"
        )
    if path.is_dir() and not _is_batches_folder(path) and (path / CIFAR10_FOLDER).is_dir():
        path = path / CIFAR10_FOLDER
    pickles = _read_python_archive(path) if path.is_file() else _read_python_folder(path)
    _check_meta(pickles[META_FILE], f"{path}: {META_FILE}")
    parts = [_batch_arrays(pickles[name], f"{path}: {name}") for name in TRAIN_BATCHES]
    train = ImageSet(
        np.concatenate([images for images, _ in parts]),
        np.concatenate([labels for _, labels in parts]),
        CIFAR10_CLASSES,
    )
    test_images, test_labels = _batch_arrays(pickles[TEST_BATCH], f"{path}: {TEST_BATCH}")
    test = ImageSet(np.ascontiguousarray(test_images), test_labels, CIFAR10_CLASSES)
    return train, test


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
        images = not _is_batches_folder(found) and _is_image_folder_root(found)
    else:
        images = _is_archive(found) and _archive_info(found).kind == "images"
    if not images:
        return load_cifar10_python(found)
    kwargs = {"splits": _SPLITS, "class_names": CIFAR10_CLASSES}
    with _image_tree(found, **kwargs, limit=None) as tree:
        for split in _SPLITS:
            names = set(tree.dirs(split))
            if names != set(CIFAR10_CLASSES):
                raise DataFormatError(
                    f"{tree.where(split)} has the class folders {sorted(names)}, but CIFAR-10 "
                    f"needs exactly {list(CIFAR10_CLASSES)}. For other classes use "
                    "tlcourse.data.load_image_folder."
                )
        sets = _read_tree(tree, _SPLITS, CIFAR10_CLASSES, (32, 32), None)
    return sets["train"], sets["test"]


# --------------------------------------------------------------------------------------------
# Image folders, on disk or in an archive
# --------------------------------------------------------------------------------------------

#: Opens one image file for reading: a file on disk or an archive member's bytes.
_Opener = Callable[[], IO[bytes]]
#: What reading a damaged archive raises (tarfile, zipfile, and the gzip/bz2/xz/zlib streams).
_ARCHIVE_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,
    RuntimeError,
)
_DRIVE = re.compile(r"^[A-Za-z]:")


def _visible_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _image_files(folder: Path) -> list[Path]:
    files = (p for p in folder.iterdir() if p.is_file() and _is_image_name(p.name))
    return sorted(files, key=lambda p: p.name)


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


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


def _damaged(archive: Path, err: BaseException) -> DataFormatError:
    return DataFormatError(
        f"{archive} could not be read to the end ({type(err).__name__}: {err}): the archive is "
        "damaged or incomplete. Download it again, or re-create it from the image folders "
        "(e.g. `tar -czf images.tar.gz train test` or `zip -r images.zip train test`)."
    )


@contextlib.contextmanager
def _open_archive(archive: Path) -> Iterator[tarfile.TarFile | zipfile.ZipFile]:
    """Open a ``.zip`` or a (compressed) tar; read errors in the block become DataFormatError."""
    try:
        if archive.name.lower().endswith(".zip"):
            handle: tarfile.TarFile | zipfile.ZipFile = zipfile.ZipFile(archive)
        else:
            handle = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed below
    except _ARCHIVE_ERRORS as err:
        raise _damaged(archive, err) from err
    try:
        with handle:
            yield handle
    except TLCourseError:
        raise
    except _ARCHIVE_ERRORS as err:
        raise _damaged(archive, err) from err


def _members(handle: tarfile.TarFile | zipfile.ZipFile) -> Iterator[tuple[str, str, Any]]:
    """``(name, kind, member)`` in archive order; kind is "dir", "file" or "other" (links)."""
    if isinstance(handle, zipfile.ZipFile):
        for info in handle.infolist():
            yield info.filename, "dir" if info.is_dir() else "file", info
    else:
        for member in handle:
            kind = "dir" if member.isdir() else "file" if member.isfile() else "other"
            yield member.name, kind, member


def _member_parts(archive: Path, name: str) -> tuple[str, ...] | None:
    """A member's path as a tuple of names; None for hidden entries (``.x``, ``__MACOSX``).

    Raises:
        DataFormatError: an absolute name or one with ``..`` (nothing is extracted, but an
            archive holding one is not trusted).
    """
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in re.split(r"[/\\]", name):
        raise DataFormatError(
            f"{archive} holds the member {name!r}, an absolute path or one that climbs out "
            "with '..'; such an archive is refused. Re-create it with paths relative to the "
            "image-folder root, e.g. `tar -C <root> -czf images.tar.gz train test`."
        )
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
        return None
    return parts


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
    python_names = {META_FILE, TEST_BATCH, *TRAIN_BATCHES}
    splits_seen: dict[tuple[str, ...], set[str]] = {}
    top: dict[str, None] = {}
    kind = None
    with _open_archive(archive) as handle:
        is_tar = isinstance(handle, tarfile.TarFile)
        for name, what, _ in _members(handle):
            parts = _member_parts(archive, name)
            if parts is None:
                continue
            top[parts[0] + ("/" if len(parts) > 1 or what == "dir" else "")] = None
            if is_tar and (
                CIFAR10_FOLDER in parts or (what == "file" and parts[-1] in python_names)
            ):
                kind = "python"
                break
            if (
                what == "file"
                and len(parts) in (3, 4)
                and parts[-3] in _SPLITS
                and _is_image_name(parts[-1])
            ):
                seen = splits_seen.setdefault(parts[:-3], set())
                seen.add(parts[-3])
                if len(seen) == len(_SPLITS):
                    kind = "images"
                    break
    return _ArchiveInfo(kind, tuple(sorted(top)))


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
    with _open_archive(archive) as handle:
        is_zip = isinstance(handle, zipfile.ZipFile)
        for name, what, member in _members(handle):
            parts = _member_parts(archive, name)
            if parts is None or what == "other":
                continue
            for i in range(len(parts) if what == "dir" else len(parts) - 1):
                folders.setdefault(parts[:i], set()).add(parts[i])
                folders.setdefault(parts[: i + 1], set())
            if (
                what != "file"
                or len(parts) not in (3, 4)
                or parts[-3] not in splits
                or (wanted is not None and parts[-2] not in wanted)
                or not _is_image_name(parts[-1])
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
def _image_tree(
    root: Path,
    *,
    splits: Sequence[str],
    class_names: Sequence[str] | None,
    limit: int | None,
) -> Iterator[_FolderTree | _ArchiveTree]:
    if root.is_dir():
        yield _FolderTree(root)
    elif root.is_file() and _is_archive(root):
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
    where: str, opener: _Opener, expected: tuple[int, int] | None, first: str | None
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
            if expected is not None and size != expected:
                against = f"the first image, {first}," if first else "`image_size`"
                raise DataFormatError(
                    f"{where} is {size[0]}x{size[1]} (height x width) but {against} is "
                    f"{expected[0]}x{expected[1]}; every image must have the same size. Resize "
                    "the images first (e.g. Pillow's Image.resize) and save them again."
                )
            try:
                rgb = image if image.mode == "RGB" else image.convert("RGB")
                return np.asarray(rgb, dtype=np.uint8)
            except (OSError, SyntaxError, ValueError) as err:
                raise DataFormatError(
                    f"{where} could not be decoded ({type(err).__name__}: {err}). "
                    "Replace or delete it."
                ) from err


def _read_tree(
    tree: _FolderTree | _ArchiveTree,
    splits: Sequence[str],
    class_names: Sequence[str] | None,
    image_size: tuple[int, int] | None,
    limit_per_class: int | None,
) -> dict[str, ImageSet]:
    """Check an image-folder tree and decode its images: the one reader of folders and archives."""
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
            pixels = _read_image(where, opener, expected, first)
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

    Files ending ``.jpg``, ``.jpeg`` or ``.png`` (any case) are read with Pillow and converted to
    RGB; other files and hidden entries are skipped. Files are taken in name order.

    Args:
        root: the folder (or archive) holding one sub-folder per split.
        splits: the split folders to read. Defaults to ``("train", "test")``.
        class_names: the classes to read, in label order. Defaults to None: the class folders
            found, in CIFAR-10's official order if they are its ten classes, else sorted.
            When given, other class folders are ignored.
        image_size: the ``(height, width)`` every image must have. Defaults to None: the size
            of the first image read. Images are never resized here.
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
    with _image_tree(root, splits=splits, class_names=class_names, limit=limit_per_class) as tree:
        return _read_tree(tree, splits, class_names, image_size, limit_per_class)


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def _check_labels(labels: Any) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "`labels` must be a 1-D array of integer class ids. "
            f"Received: shape={labels.shape}, dtype={labels.dtype}"
        )
    return labels


def stratified_split(
    labels: np.ndarray, val_fraction: float = 0.2, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train and validation, keeping each class's share in both.

    Args:
        labels: 1-D integer labels.
        val_fraction: share of each class that goes to validation, in (0, 1). Defaults to 0.2.
        seed: random seed; the same seed gives the same split. Defaults to 0.

    Returns:
        ``(train_idx, val_idx)``: sorted int64 indices into ``labels``, disjoint, covering all.
    """
    from sklearn.model_selection import train_test_split

    labels = _check_labels(labels)
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(
            "`val_fraction` must lie strictly between 0 and 1. "
            f"Received: val_fraction={val_fraction}"
        )
    try:
        train_idx, val_idx = train_test_split(
            np.arange(len(labels)), test_size=val_fraction, stratify=labels, random_state=seed
        )
    except ValueError as err:
        raise ValueError(
            f"Cannot split {len(labels)} labels with val_fraction={val_fraction}: {err} "
            "Every class needs at least 2 images and one in each part."
        ) from err
    return np.sort(train_idx).astype(np.int64), np.sort(val_idx).astype(np.int64)


def take_per_class(labels: np.ndarray, per_class: int, *, seed: int = 0) -> np.ndarray:
    """Pick ``per_class`` indices of each class at random (seeded); return them sorted.

    Raises:
        ValueError: a class has fewer than ``per_class`` examples.
    """
    labels = _check_labels(labels)
    if not isinstance(per_class, int | np.integer) or per_class < 1:
        raise ValueError(
            f"`per_class` must be a positive integer. Received: per_class={per_class!r}"
        )
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < per_class:
            raise ValueError(
                f"Class {cls} has only {len(members)} examples, fewer than per_class={per_class}. "
                f"Ask for at most {len(members)} per class. Received: per_class={per_class}"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


# --------------------------------------------------------------------------------------------
# tf.data pipelines
# --------------------------------------------------------------------------------------------


def _augment_batch(x: tf.Tensor, random: tf.Tensor, pad: int) -> tf.Tensor:
    """Random horizontal flip and translation by up to ``pad`` pixels, per image (zero fill)."""
    import tensorflow as tf

    batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    flip = tf.random.stateless_uniform((batch, 1, 1, 1), seed=tf.stack([random, 1]))
    x = tf.where(flip < 0.5, tf.reverse(x, axis=[2]), x)
    shift = tf.random.stateless_uniform(
        (batch, 2), seed=tf.stack([random, 2]), minval=0, maxval=2 * pad + 1, dtype=tf.int32
    )
    x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    rows = shift[:, :1] + tf.range(height)[tf.newaxis, :]
    cols = shift[:, 1:] + tf.range(width)[tf.newaxis, :]
    x = tf.gather(x, rows, axis=1, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    batch_size: int = 32,
    normalization: str = "imagenet",
    image_size: int | None = None,
    augment: bool = False,
    shuffle: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Make a batched ``tf.data`` pipeline of normalised images and one-hot labels.

    Each batch is gathered first, then, as a whole: cast to float32, augmented (at the source
    size, so a 4-pixel shift at 32 becomes a 28-pixel shift at 224), resized (bilinear, only
    when ``image_size`` differs from the images' size) and normalised.

    Args:
        images: uint8 array ``(N, H, W, 3)``, RGB (an ``ImageSet.images``).
        labels: integer array ``(N,)`` of class ids in ``[0, num_classes)``.
        num_classes: width of the one-hot labels.
        batch_size: images per batch (the last batch may be smaller). Defaults to 32.
        normalization: ``"imagenet"`` (what the SqueezeNet weights expect) or ``"unit"``
            (divide by 255, as the study did); see ``tlcourse.preprocessing``. Defaults to
            ``"imagenet"``.
        image_size: side of the square images the model gets, at least 32 (SqueezeNet 1.1's
            stem and three stride-2 max pools need 31 pixels). Defaults to None (keep size).
        augment: random horizontal flip and translation by up to 4 pixels per 32 pixels of
            side (zero fill), a new draw per image and epoch; for training only. Defaults to
            False.
        shuffle: reshuffle the images every epoch. Defaults to False.
        seed: seed of the shuffle and the augmentation. Defaults to 0.

    Returns:
        A dataset of ``(float32 (B, S, S, 3), float32 (B, num_classes))`` batches, prefetched.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or not len(images):
        raise ValueError(
            "`images` must be uint8 pixels of shape (N, H, W, 3) with N >= 1, as ImageSet.images "
            "holds them (normalisation happens here). "
            f"Received: images.shape={images.shape}, "
            f"images.dtype={images.dtype}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"`labels` must be 1-D with one label per image ({len(images)}). "
            f"Received: labels.shape={labels.shape}"
        )
    if not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(
            f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}"
        )
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
        )
    if image_size is not None and (
        not isinstance(image_size, int | np.integer) or image_size < MIN_IMAGE_SIZE
    ):
        raise ValueError(
            f"`image_size` must be None or an integer >= {MIN_IMAGE_SIZE}: SqueezeNet 1.1's "
            "stride-2 stem and three 3x3 stride-2 max pools need at least 31 pixels a side. "
            f"Received: image_size={image_size!r}"
        )
    check_normalization(normalization)
    targets = one_hot(labels, num_classes)

    import tensorflow as tf

    height, width = images.shape[1:3]
    out_h, out_w = (height, width) if image_size is None else (image_size, image_size)
    resize = (out_h, out_w) != (height, width)
    pad = max(1, round(4 * height / 32))
    pixels = tf.constant(images)
    onehot = tf.constant(targets)

    def transform(index: tf.Tensor, random: tf.Tensor | None = None):
        x = tf.cast(tf.gather(pixels, index), tf.float32)
        if random is not None:  # at the source size: the same shift, far cheaper than at 224
            x = _augment_batch(x, random, pad)
        if resize:
            x = tf.image.resize(x, (out_h, out_w), method="bilinear")
        x = normalize(x, normalization)
        x = tf.ensure_shape(x, (None, out_h, out_w, 3))
        return x, tf.gather(onehot, index)

    ds = tf.data.Dataset.range(len(images))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment:
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, randoms))
    ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
