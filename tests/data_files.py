"""Helpers for the data tests: snapshots of source folders, and archives packed from folders."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

TOP = "cifar10-images"  # the top folder of the archives made here


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``roots`` with its size and modification time."""
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for root in roots
        for p in sorted(root.rglob("*"))
    }


def make_archive(source: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
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
