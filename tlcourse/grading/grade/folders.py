"""Submission folders are hostile data: the grader copies, hashes and keeps only regular files.

A student controls every name in their folder, and a kernel can write links into the folder it
runs in. The grader runs as the instructor (often root) outside the sandbox, and nbgrader's
own steps copy and chmod whatever they find there, following links. So links, devices, FIFOs
and sockets are never followed: :func:`copy_regular_files` stages only regular files into a
fresh folder, :func:`remove_irregular` clears what a kernel left before nbgrader writes into
its folder again, and :func:`regular_files` is what is hashed.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path


def _walk(folder: Path):
    """(path, lstat) of everything below ``folder``, never entering a linked folder."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs) + sorted(files):
            path = Path(root, name)
            yield path, os.lstat(path)
        dirs.sort()


def regular_files(folder: Path) -> list[Path]:
    """The regular files below ``folder`` (not links, devices, FIFOs or sockets), sorted."""
    return sorted(path for path, info in _walk(folder) if stat.S_ISREG(info.st_mode))


def copy_regular_files(source: Path, dest: Path) -> list[str]:
    """Copy ``source``'s regular files into a new folder ``dest``; the names of what was left."""
    dest.mkdir(parents=True)
    skipped = []
    for path, info in _walk(source):
        relative = path.relative_to(source)
        if stat.S_ISDIR(info.st_mode):
            (dest / relative).mkdir(exist_ok=True)
        elif stat.S_ISREG(info.st_mode):
            with open(path, "rb", opener=_no_follow) as src, open(dest / relative, "xb") as out:
                shutil.copyfileobj(src, out)
        else:
            skipped.append(relative.as_posix())
    return skipped


def remove_irregular(folder: Path) -> list[str]:
    """Delete every link, device, FIFO and socket below ``folder``; their names."""
    removed = []
    for path, info in list(_walk(folder)):
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            path.unlink()
            removed.append(path.relative_to(folder).as_posix())
    return removed


def _no_follow(path: str, flags: int) -> int:
    """``open`` that refuses a link swapped in since the walk saw a regular file."""
    return os.open(path, flags | os.O_NOFOLLOW)
