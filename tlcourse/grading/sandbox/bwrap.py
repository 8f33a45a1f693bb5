"""The bubblewrap command line of one sandbox: namespaces, a file system built from scratch.

The sandbox gets new user, PID, network, IPC, UTS and (where the kernel has them) cgroup
namespaces, a session of its own, no capability, no further user namespace, and dies with
the process that started it. Inside, its processes are :data:`SANDBOX_UID` (the host sees
the uid bubblewrap runs as). Its root is an empty tmpfs, read-only once built, holding only:

* ``/usr`` read-only, and ``/bin``, ``/sbin``, ``/lib*`` as the host has them (links into
  ``/usr``, or read-only folders); of ``/etc`` only :data:`ETC` and an ``/etc/passwd`` and
  ``/etc/group`` naming the sandbox's user alone;
* a new ``/proc`` (its own PID namespace: it sees no other process) and a minimal ``/dev``;
  a private ``/tmp`` and ``/dev/shm``, ``tmp_mb`` MiB each;
* the :class:`Bind` s it is given, at their places: its Python and the tlcourse package, the
  course's data and weights read-only; the submission's folder and the kernel's socket folder
  writable.

Nothing else of the host is there: no other student's work, no gradebook, no ``/sys``, no
home folder. The environment is cleared and set to what the caller gives.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tlcourse.grading.sandbox.errors import FIX, SandboxUnavailable

#: The uid and gid of the sandbox's processes inside it.
SANDBOX_UID = SANDBOX_GID = 1000
SANDBOX_USER = "student"
HOSTNAME = "sandbox"
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: What of the host's /etc a program needs (the dynamic linker, time zone, names, fonts).
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "hosts", "fonts")
PASSWD = (
    f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}:graded kernel:/tmp:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
GROUP = f"{SANDBOX_USER}:x:{SANDBOX_GID}:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class Bind:
    """``source`` on the host (or its stage point) at ``dest`` in the sandbox."""

    source: str
    dest: str
    writable: bool = False


def find_bwrap(name: str) -> str:
    """The bubblewrap program ``name`` (on ``PATH``, or a path), or why there is none."""
    found = shutil.which(name)
    if found is None:
        where = "" if os.sep in name else f" on PATH ({os.environ.get('PATH', '')})"
        raise SandboxUnavailable(f"bubblewrap ({name!r}) was not found{where}. {FIX}")
    return found


def _system() -> list[str]:
    args: list[str] = []
    for path in SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in ETC:
        path = f"/etc/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def command(
    bwrap: str,
    binds: list[Bind],
    *,
    cwd: str | None,
    environment: dict[str, str],
    tmp_mb: int,
    fds: dict[str, int],
) -> list[str]:
    """bubblewrap's arguments up to ``--`` (the command follows).

    ``fds``: open descriptors it reads, by role: ``info`` (it writes its namespaces and its
    first process's pid there), ``passwd`` and ``group`` (their contents).
    """
    size = str(tmp_mb * 2**20)
    args = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
    args += ["--unshare-uts", "--unshare-cgroup-try", "--disable-userns", "--new-session"]
    args += ["--die-with-parent", "--cap-drop", "ALL", "--hostname", HOSTNAME]
    args += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]
    args += _system()
    args += ["--ro-bind-data", str(fds["passwd"]), "/etc/passwd"]
    args += ["--ro-bind-data", str(fds["group"]), "/etc/group"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
    args += ["--perms", "1777", "--size", size, "--tmpfs", "/dev/shm"]
    # parents before what lies inside them; a writable folder after a read-only one above it
    for bind in sorted(binds, key=lambda b: (len(Path(b.dest).parts), b.writable, b.dest)):
        args += ["--bind" if bind.writable else "--ro-bind", bind.source, bind.dest]
    args += ["--remount-ro", "/", "--chdir", cwd or "/tmp", "--clearenv"]
    for name, value in sorted(environment.items()):
        args += ["--setenv", name, value]
    return [*args, "--info-fd", str(fds["info"])]
