"""Who a sandbox runs as on the host, and the folders lent to it for its life.

A root grader gives each sandbox a uid of its own (and the same gid), from a block of
``count`` uids from ``first``; a lock file held by the grader for the sandbox's life keeps
two sandboxes from sharing one. Outside its user namespace every process of the sandbox is
that uid, never 0; RLIMIT_NPROC then counts each sandbox apart (a fork bomb in one starves
no other) and binds nothing the uid may not read. The folders a sandbox writes (the
submission's, the kernel's sockets) are lent to its uid before it starts (:func:`lend`) and
given back to their owner once every process of it is gone (:func:`give_back`); neither
follows a link. An instructor who is not root runs sandboxes as themselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tlcourse.grading.sandbox.errors import SandboxError


@dataclass
class HostUser:
    """The host uid and gid a sandbox runs as; ``lock`` holds a uid of its own."""

    uid: int
    gid: int
    lock: int | None = None

    @property
    def own(self) -> bool:
        """A uid of the sandbox's own (a root grader), not the grader's."""
        return self.lock is not None

    def release(self) -> None:
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None


def state_dir(name: str, mode: int = 0o700) -> Path:
    """A folder of a root grader's own (``/run/tlcourse-sandbox/NAME``), never a link."""
    base = Path("/run") if Path("/run").is_dir() else Path("/var/tmp")
    folder = base / "tlcourse-sandbox" / name
    for path in (folder.parent, folder):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o711 if path == folder.parent else mode)
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise SandboxError(f"{path} is not a folder of this user's: remove it and retry.")
    return folder


def _uids_running() -> set[int]:
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found.add(os.stat(entry.path).st_uid)
    return found


def allocate(first: int, count: int) -> HostUser:
    """A uid of its own for a sandbox of a root grader; the grader's own uid otherwise."""
    if os.geteuid() != 0:
        return HostUser(os.getuid(), os.getgid())
    folder = state_dir("uids")
    running = _uids_running()
    start = os.getpid() % count
    for step in range(count):
        uid = first + (start + step) % count
        if uid in running:
            continue
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        lock = os.open(folder / f"{uid}.lock", flags, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        return HostUser(uid, uid, lock)
    raise SandboxError(
        f"All {count} sandbox uids from {first} are in use. Raise "
        "c.SandboxProvisioner.uid_count, or grade with fewer workers."
    )


def _may(info: os.stat_result, user: HostUser, bits: int) -> bool:
    """Whether ``user`` (no supplementary groups) has the ``rwx`` ``bits`` on ``info``."""
    if info.st_uid == user.uid:
        shift = 6
    elif info.st_gid == user.gid:
        shift = 3
    else:
        shift = 0
    return (info.st_mode >> shift) & bits == bits


def reachable(path: str, user: HostUser) -> bool:
    """Whether ``user`` may walk to ``path`` (search permission on every folder above it)."""
    return all(_may(os.stat(parent), user, 0o1) for parent in Path(path).parents)


def unreadable(path: str, user: HostUser, limit: int = 10_000) -> list[str]:
    """What under ``path`` ``user`` may not read (folders: read and search; files: read)."""
    found: list[str] = []
    if not os.path.exists(path):
        return found
    paths = [path]
    if os.path.isdir(path):
        for top, folders, files in os.walk(path):
            paths += [os.path.join(top, name) for name in folders + files]
            if len(paths) > limit:
                break
    for item in paths:
        info = os.lstat(item)
        if stat.S_ISLNK(info.st_mode):
            continue
        if not _may(info, user, 0o5 if stat.S_ISDIR(info.st_mode) else 0o4):
            found.append(item)
    return found


def _walk(top: str):
    """``top`` and everything under it, links as themselves (never followed)."""
    yield top
    if os.path.islink(top) or not os.path.isdir(top):
        return
    for folder, folders, files in os.walk(top, followlinks=False):
        for name in folders + files:
            yield os.path.join(folder, name)


@dataclass(frozen=True)
class Lent:
    """A folder lent to a sandbox's uid, and the owner it goes back to."""

    path: str
    uid: int
    gid: int


def lend(folder: str, user: HostUser) -> Lent | None:
    """Give ``folder`` and what it holds to ``user`` (a root grader's sandbox uid only)."""
    if not user.own:
        return None
    owner = os.lstat(folder)
    for path in _walk(folder):
        os.lchown(path, user.uid, user.gid)
    return Lent(folder, owner.st_uid, owner.st_gid)


def give_back(lent: Lent) -> None:
    """Everything under a lent folder back to its owner (only once the sandbox is gone).

    A file the sandbox made set-user-ID loses that bit: it must never become its owner's.
    """
    for path in _walk(lent.path):
        with contextlib.suppress(FileNotFoundError):
            os.lchown(path, lent.uid, lent.gid)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and info.st_mode & 0o6000:
                os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o6000)
