"""CIFAR-10's official "python version": a batches folder or ``cifar-10-python.tar.gz``.

The layout is ``cifar-10-batches-py/`` holding ``data_batch_1`` .. ``data_batch_5``,
``test_batch`` and ``batches.meta``: pickles written by Python 2. The archive is read in memory,
never extracted. The pickles are untrusted input, so they are read with an unpickler that builds
nothing but dicts, lists, bytes and numpy arrays.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np

from tlcourse.config import CIFAR10_CLASSES
from tlcourse.errors import DataFormatError, DataNotFoundError
from tlcourse.imageset import ImageSet

#: Names used by the official python layout.
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_BATCHES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
#: Every file of the layout, in the order they are read and listed.
CIFAR10_FILES: tuple[str, ...] = (*TRAIN_BATCHES, TEST_BATCH, META_FILE)

_REDOWNLOAD = (
    "The file is damaged or incomplete: delete it and download CIFAR-10 again "
    "(or re-run the tool that wrote it)."
)


def is_batches_folder(folder: Path) -> bool:
    """Whether ``folder`` is a ``cifar-10-batches-py`` folder, by its name or its files."""
    if folder.name == CIFAR10_FOLDER:
        return True
    return any((folder / name).is_file() for name in CIFAR10_FILES)


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
    if labels.size == 0:  # an empty batch (the graded kernels' test set) has no dtype to keep
        labels = labels.astype(np.int64)
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
    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if missing:
        raise DataFormatError(
            f"{folder} is missing {', '.join(missing)} of the official CIFAR-10 python layout "
            f"({', '.join(CIFAR10_FILES)}). Download CIFAR-10 again, or re-run the tool that "
            "wrote it."
        )
    pickles = {}
    for name in CIFAR10_FILES:
        with open(folder / name, "rb") as f:
            pickles[name] = _unpickle(f, str(folder / name))
    return pickles


def _read_python_archive(archive: Path) -> dict[str, Any]:
    pickles: dict[str, Any] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in CIFAR10_FILES and name not in pickles:
                    stream = tar.extractfile(member)
                    assert stream is not None  # a regular file always has a stream
                    pickles[name] = _unpickle(stream, f"{archive}:{member.name}")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataFormatError(
            f"{archive} is not a complete tar archive ({type(err).__name__}: {err}). {_REDOWNLOAD}"
        ) from err
    missing = [name for name in CIFAR10_FILES if name not in pickles]
    if missing:
        raise DataFormatError(
            f"{archive} lacks {', '.join(missing)} of the official CIFAR-10 python layout "
            f"({CIFAR10_FOLDER}/{{{', '.join(CIFAR10_FILES)}}}). {_REDOWNLOAD}"
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
    if path.is_dir() and not is_batches_folder(path) and (path / CIFAR10_FOLDER).is_dir():
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


def write_cifar10_python(folder: str | os.PathLike, train: ImageSet, test: ImageSet) -> Path:
    """Write ``train`` and ``test`` (32x32 RGB) as a ``cifar-10-batches-py`` folder in ``folder``.

    Five training batches of about equal size, one test batch, the class names: the files
    :func:`load_cifar10_python` reads, pickled (protocol 4) with the official keys. Each file
    is written whole, then moved into place.

    Returns:
        The ``cifar-10-batches-py`` folder.
    """
    out = Path(folder) / CIFAR10_FOLDER
    out.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(train), len(TRAIN_BATCHES) + 1).astype(int)
    parts = {
        name: (train.images[start:stop], train.labels[start:stop])
        for name, start, stop in zip(TRAIN_BATCHES, bounds[:-1], bounds[1:], strict=True)
    }
    parts[TEST_BATCH] = (test.images, test.labels)
    contents: dict[str, Any] = {
        name: {
            b"data": np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), 3072),
            b"labels": [int(label) for label in labels],
        }
        for name, (images, labels) in parts.items()
    }
    contents[META_FILE] = {b"label_names": [name.encode() for name in CIFAR10_CLASSES]}
    for name, content in contents.items():
        partial = out / f".{name}.partial"
        with open(partial, "wb") as handle:
            pickle.dump(content, handle, protocol=4)
        os.replace(partial, out / name)
    return out
