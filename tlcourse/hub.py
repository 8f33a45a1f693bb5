"""A registry of remote files and a careful download cache, every file pinned by sha256.

Like d2l's ``DATA_HUB``: a dict of :class:`RemoteFile` and one function, :func:`fetch`. A cached
file is used only when its sha256 matches; a download goes to a temporary folder inside the
cache, is checked, and only then moved into place with ``os.replace``, so a failed, interrupted
or corrupted download never leaves a file behind. A ``<fname>.lock`` file beside each cached
file keeps two processes from downloading it at once (the empty lock file stays).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from tlcourse import config
from tlcourse.errors import ChecksumError, DataNotFoundError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20  # 1 MiB


@dataclass(frozen=True)
class RemoteFile:
    """A file tlcourse may download: its registry name, local file name, URL and sha256."""

    name: str
    fname: str
    origin: str
    sha256: str
    description: str


REGISTRY: dict[str, RemoteFile] = {
    entry.name: entry
    for entry in (
        RemoteFile(
            name="cifar10-python",
            fname="cifar-10-python.tar.gz",
            origin="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            # The value keras.datasets.cifar10.load_data pins.
            sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            description="CIFAR-10, official python version (163 MB)",
        ),
        RemoteFile(
            name="squeezenet1_1-torchvision",
            fname="squeezenet1_1-b8a52dc0.pth",
            origin="https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
            # torchvision names the file by the first 8 hex digits of this hash.
            sha256="b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b",
            description="torchvision SqueezeNet 1.1 ImageNet weights (state_dict, 4.9 MB)",
        ),
    )
}


def sha256sum(path: str | Path) -> str:
    """The sha256 of a file as 64 hex digits, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str, *, hint: str = "") -> None:
    """Raise :class:`~tlcourse.errors.ChecksumError` unless ``path`` has sha256 ``expected``."""
    actual = sha256sum(path)
    if actual != expected.lower():
        raise ChecksumError(
            f"{path} has sha256 {actual}, expected {expected.lower()}. The file is damaged "
            "(for example a partial download) or is not the file tlcourse pins; delete it and "
            f"download it again, or check it with `sha256sum`.{_suffix(hint)}"
        )


def _suffix(hint: str) -> str:
    return f" {hint}" if hint else ""


def _lookup(name: str) -> RemoteFile:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"Unknown remote file name. Known names: {', '.join(sorted(REGISTRY))}. "
            f"Received: name={name!r}"
        ) from None


def fetch(
    name: str,
    *,
    origin: str | None = None,
    cache: str | Path | None = None,
    hint: str = "",
) -> Path:
    """Return the local path of registry file ``name``, downloading it if needed.

    Args:
        name: a key of :data:`REGISTRY`, e.g. ``"squeezenet1_1-torchvision"``.
        origin: URL to download from instead of the registry's (a mirror); the sha256 pinned
            in the registry is still required.
        cache: folder holding downloads. Defaults to ``tlcourse.config.cache_dir()``
            (``$TLCOURSE_CACHE`` or ``~/.keras/tlcourse``).
        hint: a sentence appended to error messages (what the caller's user can do instead).

    Raises:
        ValueError: unknown ``name``.
        DataNotFoundError: the download failed (HTTP error, no network, truncated transfer).
        ChecksumError: the downloaded file's sha256 differs from the pinned one.
    """
    entry = _lookup(name)
    url = origin or entry.origin
    folder = Path(cache).expanduser() if cache is not None else config.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry.fname
    with FileLock(f"{target}.lock"):
        if target.exists():
            if sha256sum(target) == entry.sha256:
                return target
            log.warning("%s has the wrong sha256; downloading it again from %s", target, url)
            target.unlink()
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.fname}.", suffix=".part", dir=folder))
        try:
            downloaded = _download(entry, url, staging, target, hint)
            verify_sha256(
                downloaded,
                entry.sha256,
                hint=f"It was downloaded from {url}; nothing was cached.{_suffix(hint)}",
            )
            os.replace(downloaded, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _download(entry: RemoteFile, url: str, staging: Path, target: Path, hint: str) -> Path:
    """Download ``url`` into ``staging`` with ``keras.utils.get_file``; return the file.

    Keras deletes a partial file when the transfer fails, but keeps a complete file whose hash
    is wrong (and raises ``ValueError``); the caller verifies and removes ``staging`` either way.
    """
    import keras  # deferred: importing keras loads TensorFlow

    destination = staging / entry.fname
    try:
        keras.utils.get_file(
            entry.fname,
            url,
            file_hash=entry.sha256,
            hash_algorithm="sha256",
            cache_dir=str(staging),
            cache_subdir=str(staging),  # absolute: keras saves exactly there
        )
    except Exception as exc:
        if isinstance(exc, ValueError) and destination.exists():
            return destination  # complete but wrong hash: verify_sha256 reports it
        raise DataNotFoundError(
            f"Could not download {entry.fname} ({entry.description}) from {url}: {exc}. "
            f"To work offline, copy the file (sha256 {entry.sha256}) to {target}, "
            f"where tlcourse looks first.{_suffix(hint)}"
        ) from exc
    return destination
