"""Where a number came from: command, commit, versions, data and weights hashes, machine, date."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

_PACKAGES = ("tlcourse", "tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-learn")


@functools.cache
def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """The checkout's commit, with ``-dirty`` when tracked files changed; ``None`` outside git.

    Read once per process (the first call), so a commit made while a long run is going
    does not end up in that run's records.
    """
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide the numbers (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def machine() -> dict[str, object]:
    """The hardware a run used: CPU, core count, accelerators seen by TensorFlow."""
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
    }


def sha256_of(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder (each file's relative name and sha256, sorted)."""
    from tlcourse.hub import sha256sum

    path = Path(path)
    if not path.is_dir():
        return sha256sum(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256sum(file)}\n".encode())
    return digest.hexdigest()


def command_line() -> str:
    """The command as a user would type it: ``tlcourse ...`` however the CLI was started."""
    program = Path(sys.argv[0]).name
    if Path(program).stem in ("tlcourse", "cli", "__main__"):
        program = "tlcourse"
    return " ".join([program, *sys.argv[1:]])


def now_utc() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def collect(
    *, seed: int, data_path: str | os.PathLike, weights_path: str | os.PathLike | None
) -> dict[str, object]:
    """Everything needed to say how a run was made (wall time is added by the caller)."""
    return {
        "command": command_line(),
        "git_commit": git_commit(),
        "versions": package_versions(),
        "data": {"path": str(data_path), "sha256": sha256_of(data_path)},
        "weights": (
            {"path": str(weights_path), "sha256": sha256_of(weights_path)}
            if weights_path is not None
            else None
        ),
        "seed": seed,
        "machine": machine(),
        "date": now_utc(),
    }
