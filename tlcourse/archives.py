"""Tar and zip archives read in memory, never extracted: opening, members, safe member names.

A damaged archive raises :class:`~tlcourse.errors.DataFormatError` saying how to re-create it;
a member with an absolute name or ``..`` gets the whole archive refused. Which layout an archive
holds is :mod:`tlcourse.data`'s question; reading its images is :mod:`tlcourse.image_folder`'s.
"""

from __future__ import annotations

import contextlib
import lzma
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tlcourse.errors import DataFormatError, TLCourseError

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

#: An open archive, as :func:`open_archive` yields it.
Archive = tarfile.TarFile | zipfile.ZipFile


def is_archive(path: Path) -> bool:
    """Whether ``path``'s name ends in one of :data:`ARCHIVE_SUFFIXES` (any case)."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _damaged(archive: Path, err: BaseException) -> DataFormatError:
    return DataFormatError(
        f"{archive} could not be read to the end ({type(err).__name__}: {err}): the archive is "
        "damaged or incomplete. Download it again, or re-create it from the image folders "
        "(e.g. `tar -czf images.tar.gz train test` or `zip -r images.zip train test`)."
    )


@contextlib.contextmanager
def open_archive(archive: Path) -> Iterator[Archive]:
    """Open a ``.zip`` or a (compressed) tar; read errors in the block become DataFormatError."""
    try:
        if archive.name.lower().endswith(".zip"):
            handle: Archive = zipfile.ZipFile(archive)
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


def members(handle: Archive) -> Iterator[tuple[str, str, Any]]:
    """``(name, kind, member)`` in archive order; kind is "dir", "file" or "other" (links)."""
    if isinstance(handle, zipfile.ZipFile):
        for info in handle.infolist():
            yield info.filename, "dir" if info.is_dir() else "file", info
    else:
        for member in handle:
            kind = "dir" if member.isdir() else "file" if member.isfile() else "other"
            yield member.name, kind, member


def member_parts(archive: Path, name: str) -> tuple[str, ...] | None:
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
