"""What one sandbox may use: rlimits its first process sets, cgroups the grader makes for it.

The rlimits (CPU seconds, address space, file size, open files, processes, no core files) are
set in the process that becomes bubblewrap, before it starts anything, so every process of the
sandbox inherits them. The cgroups (the v1 ``pids`` and ``memory`` controllers, or a v2
hierarchy whose controllers the grader may enable) are made by the grader, one per sandbox,
as children of the grader's own cgroups; the sandbox's first process enters them before it
starts anything, and nothing in the sandbox can leave them (it has no ``/sys`` and no
capability). They hold for root too: the task count and the memory (its ``/tmp`` included)
of the whole sandbox. :meth:`Cgroups.kill` stops every task left in them.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("pids", "memory")
PREFIX = "tlcourse-"
MB = 2**20


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use (defaults: the traits of ``SandboxProvisioner``)."""

    cpu_seconds: int
    memory_mb: int
    processes: int
    file_mb: int
    open_files: int
    tmp_mb: int


def rlimits(limits: Limits, nproc: int | None) -> list[tuple[int, tuple[int, int]]]:
    """The ``(resource, (soft, hard))`` pairs of ``limits``; RLIMIT_NPROC only if ``nproc``."""
    pairs = [
        (resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5)),
        (resource.RLIMIT_AS, (limits.memory_mb * MB,) * 2),
        (resource.RLIMIT_FSIZE, (limits.file_mb * MB,) * 2),
        (resource.RLIMIT_NOFILE, (limits.open_files,) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
    ]
    if nproc is not None:
        pairs.append((resource.RLIMIT_NPROC, (nproc, nproc)))
    return pairs


def set_rlimits(pairs: list[tuple[int, tuple[int, int]]]) -> None:
    """Set the pairs :func:`rlimits` made (in the child, before it becomes bubblewrap)."""
    for which, value in pairs:
        resource.setrlimit(which, value)


def tasks_of(uid: int) -> int:
    """Processes and threads whose real uid is ``uid`` (what RLIMIT_NPROC counts)."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":", 1) for line in Path(entry.path, "status").read_text().splitlines()
            )
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
    return count


def _own_cgroups() -> dict[str, str]:
    """``{controller: path}`` of this process's cgroups (``""`` for the v2 hierarchy)."""
    found = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            found[name] = path.lstrip("/")
    return found


def _bases() -> list[tuple[tuple[str, ...], Path]]:
    """``(controllers, folder)`` where this process may make child cgroups for a sandbox."""
    own = _own_cgroups()
    v1 = [
        ((name,), CGROUP_ROOT / name / own[name])
        for name in CONTROLLERS
        if name in own and (CGROUP_ROOT / name / "cgroup.procs").exists()
    ]
    if v1:
        return [(names, path) for names, path in v1 if os.access(path, os.W_OK)]
    base = CGROUP_ROOT / own.get("", "")
    if not (base / "cgroup.subtree_control").exists() or not os.access(base, os.W_OK):
        return []
    try:  # fails where this cgroup holds processes and is not the root (no internal tasks)
        (base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in CONTROLLERS))
    except OSError:
        return []
    return [(CONTROLLERS, base)]


def available() -> list[str]:
    """The cgroup controllers a sandbox of this process gets (none where it may make none)."""
    return [name for names, _ in _bases() for name in names]


def _settings(path: Path, limits: Limits) -> dict[str, str]:
    memory = str(limits.memory_mb * MB)
    if (path / "cgroup.controllers").exists():  # v2
        return {"pids.max": str(limits.processes), "memory.max": memory, "memory.swap.max": "0"}
    return {
        "pids.max": str(limits.processes),
        "memory.limit_in_bytes": memory,
        "memory.memsw.limit_in_bytes": memory,  # absent without swap accounting
    }


def _creator_alive(name: str) -> bool:
    """Whether the grader that made cgroup ``name`` (``tlcourse-PID-...``) still runs: its
    cgroup may be empty only because its sandbox has not entered it yet."""
    pid = name.removeprefix(PREFIX).split("-")[0]
    return pid.isdigit() and Path(f"/proc/{pid}").exists()


@dataclass
class Cgroups:
    """The cgroups of one sandbox (none where this process may make none)."""

    paths: list[Path]

    @classmethod
    def create(cls, limits: Limits) -> Cgroups:
        """A fresh cgroup in each controller, with ``limits``; stale empty ones removed."""
        made = []
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        for _, base in _bases():
            for stale in base.glob(f"{PREFIX}*"):
                if not _creator_alive(stale.name):
                    with contextlib.suppress(OSError):  # only an empty cgroup goes
                        stale.rmdir()
            path = base / name
            try:
                path.mkdir()
            except OSError:
                continue
            made.append(path)
            for setting, value in _settings(path, limits).items():
                if (path / setting).exists():
                    with contextlib.suppress(OSError):
                        (path / setting).write_text(value)
        return cls(made)

    def entry_fds(self) -> list[int]:
        """``cgroup.procs`` of each, open for writing: the child writes ``0`` to enter."""
        return [os.open(path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC) for path in self.paths]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.paths:
            with contextlib.suppress(OSError):
                found.update(int(pid) for pid in (path / "cgroup.procs").read_text().split())
        return found

    def kill(self) -> None:
        """Send SIGKILL to every task in them (``cgroup.kill`` where v2 has it)."""
        for path in self.paths:
            if (path / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (path / "cgroup.kill").write_text("1")
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self, timeout: float = 5.0) -> None:
        """Remove them once empty (a task that is being killed may take a moment to leave)."""
        deadline = time.monotonic() + timeout
        for path in self.paths:
            while path.exists():
                try:
                    path.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    self.kill()
                    time.sleep(0.05)
        self.paths = [path for path in self.paths if path.exists()]
