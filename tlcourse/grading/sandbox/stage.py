"""Host paths a sandbox's uid cannot walk to, bound where it can, in a mount namespace of the
launching process alone.

bubblewrap runs as the sandbox's unprivileged uid and finds each bind's source by its path
(``realpath``, then ``mount``; ``--bind-fd`` too), so it cannot bind what lies under a folder
that uid may not enter: a Python under ``/root``, a course under pytest's
``/tmp/pytest-of-root`` (folders of mode 0700). For a root grader, the process that becomes
bubblewrap therefore first makes a mount namespace of its own (the host's mounts never
change, and the binds vanish with it) and binds each such source onto an empty mount point
in a folder the uid may enter; bubblewrap binds it on from there to its place in the sandbox.
What the uid may read inside a source stays as the source's own permissions say.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import tempfile
from pathlib import Path

from tlcourse.grading.sandbox.users import state_dir

CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_SLAVE = 4096, 16384, 1 << 19


class Stage:
    """Mount points for the sources of one sandbox, and the binds its child makes on them."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.binds: list[tuple[bytes, bytes]] = []
        self._libc = ctypes.CDLL(None, use_errno=True)

    def point(self, source: str) -> str:
        """The path bubblewrap binds instead of ``source`` (an empty mount point of its type)."""
        if self.folder is None:
            base = state_dir("stage", 0o711)
            for stale in base.glob("s-*"):  # of a grader killed before it could remove it
                if not Path(f"/proc/{stale.name.split('-')[1]}").exists():
                    _remove(stale)
            self.folder = Path(tempfile.mkdtemp(dir=base, prefix=f"s-{os.getpid()}-"))
            self.folder.chmod(0o711)
        point = self.folder / str(len(self.binds))
        if os.path.isdir(source):
            point.mkdir()
        else:
            point.touch()
        self.binds.append((os.fsencode(source), os.fsencode(point)))
        return str(point)

    def enter(self) -> None:
        """In the child, still root: a mount namespace of its own with every bind made.

        Only C calls on data prepared by :meth:`point` (the child of a threaded grader).
        """
        if not self.binds:
            return
        if self._libc.unshare(CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
        if self._libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_SLAVE), None) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rslave /")
        for source, point in self.binds:
            if self._libc.mount(source, point, None, ctypes.c_ulong(MS_BIND | MS_REC), None):
                raise OSError(ctypes.get_errno(), f"mount --rbind {source!r} {point!r}")

    def remove(self) -> None:
        """Remove the (empty, on the host) mount points and their folder."""
        if self.folder is not None:
            _remove(self.folder)
            self.folder = None


def _remove(folder: Path) -> None:
    """A stage folder and its mount points (empty on the host; links never followed)."""
    for entry in os.scandir(folder):
        with contextlib.suppress(OSError):
            os.rmdir(entry.path) if entry.is_dir(follow_symlinks=False) else os.unlink(entry)
    with contextlib.suppress(OSError):
        folder.rmdir()
