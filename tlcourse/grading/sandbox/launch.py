"""One sandbox from its making to its end: its uid, cgroups, lent folders and binds, the set-up
of its first process, signals, and a teardown after which none of its processes is left.

:meth:`Sandbox.open` prepares it for one command (a kernel); :meth:`Sandbox.command` gives
the command line and the ``Popen`` arguments that start it (in the child, before it becomes
bubblewrap: enter the cgroups, make the stage binds, set the rlimits, become the sandbox's
uid); :meth:`Sandbox.started` reads what bubblewrap reports (its namespaces, its first
process). :meth:`Sandbox.close` kills every process of the sandbox (its bubblewrap, all of
its PID namespace, all of its cgroups), waits, at most :data:`KILL_SECONDS`, until none is
left, then removes its cgroups and gives its folders back. Without bubblewrap
(``Settings.bwrap`` is None) the command runs as the grader, with the rlimits and cgroups
only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.grading.sandbox import bwrap
from tlcourse.grading.sandbox.errors import SandboxError
from tlcourse.grading.sandbox.limits import Cgroups, Limits, rlimits, set_rlimits, tasks_of
from tlcourse.grading.sandbox.python_env import kernel_paths
from tlcourse.grading.sandbox.stage import Stage
from tlcourse.grading.sandbox.users import HostUser, Lent, allocate, give_back, lend, reachable

log = logging.getLogger(__name__)

#: Longest wait for bubblewrap's report, and for the last process of a sandbox to go.
INFO_SECONDS = KILL_SECONDS = 10.0


@dataclass(frozen=True)
class Settings:
    """What every sandbox of a provisioner gets (see ``SandboxProvisioner``'s traits)."""

    bwrap: str | None
    limits: Limits
    uid_first: int
    uid_count: int
    #: Extra read-only binds: path in the sandbox -> path on the host.
    read_only: dict[str, str] = field(default_factory=dict)


def base_environment(home: str, python: str) -> dict[str, str]:
    """What every sandboxed program is told: a path, a home and caches in its private /tmp."""
    return {
        "PATH": f"{os.path.dirname(python)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "MPLCONFIGDIR": f"{home}/matplotlib",
        "IPYTHONDIR": f"{home}/ipython",
        "PYTHONSAFEPATH": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _stat_fields(pid: int) -> list[str]:
    """``/proc/PID/stat`` after the command name (state, ppid, pgrp, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _alive(pid: int) -> bool:
    try:
        return _stat_fields(pid)[0] != "Z"
    except (OSError, IndexError):
        return False


def _in_pid_namespace(inode: int) -> set[int]:
    """Live processes of the PID namespace with this inode (as far as this user may look)."""
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry.name}/ns/pid").st_ino == inode:
                    found.add(int(entry.name))
    return {pid for pid in found if _alive(pid)}


class Sandbox:
    """One sandbox, for one command; see the module's docstring."""

    def __init__(self, settings: Settings, cwd: str | None) -> None:
        self.settings = settings
        self.cwd = os.path.abspath(cwd) if cwd else None
        self.user = HostUser(os.getuid(), os.getgid())
        self.cgroups = Cgroups([])
        self.stage = Stage()
        self.lent: list[Lent] = []
        self.binds: list[bwrap.Bind] = []
        self.scratch: str | None = None
        #: Host pid of the started command (bubblewrap); what bubblewrap reported.
        self.pid: int | None = None
        self.info: dict = {}
        self._kernel_pid: int | None = None
        self._child_fds: list[int] = []
        self._info_fd: int | None = None
        self.closed = False

    @property
    def isolated(self) -> bool:
        return self.settings.bwrap is not None

    @property
    def home(self) -> str:
        """The command's home and temporary folder: the private /tmp, or a scratch folder."""
        return "/tmp" if self.isolated else str(self.scratch)

    @classmethod
    def open(cls, settings: Settings, cwd: str | None, writable: list[str] = ()) -> Sandbox:
        """A sandbox whose command runs in ``cwd`` and may write there and in ``writable``."""
        sandbox = cls(settings, cwd)
        try:
            sandbox._prepare([path for path in [sandbox.cwd, *writable] if path])
        except BaseException:
            sandbox.close()
            raise
        return sandbox

    def _prepare(self, folders: list[str]) -> None:
        if not self.isolated:
            self.cgroups = Cgroups.create(self.settings.limits)
            self.scratch = tempfile.mkdtemp(prefix="tlk-home-")
            return
        self.user = allocate(self.settings.uid_first, self.settings.uid_count)
        self.cgroups = Cgroups.create(self.settings.limits)
        self.binds = self._binds(folders)
        for folder in folders:
            lent = lend(folder, self.user)
            if lent:
                self.lent.append(lent)

    def _reach(self, path: str) -> str:
        """What bubblewrap binds for host ``path``: itself, or a stage point it can reach."""
        if self.user.own and not reachable(path, self.user):
            return self.stage.point(path)
        return path

    def _binds(self, folders: list[str]) -> list[bwrap.Bind]:
        read_only = {path: path for path in kernel_paths()} | dict(self.settings.read_only)
        real_folders = [os.path.realpath(folder) for folder in folders]
        binds = []
        for dest, source in read_only.items():
            real = os.path.realpath(source)
            if not os.path.exists(real):
                continue  # what the kernel misses, it reports (the pre-flight names the fix)
            inside = [f for f in real_folders if f == real or f.startswith(real.rstrip("/") + "/")]
            if inside:
                raise SandboxError(
                    f"The sandbox was asked to show {source} read-only, which holds its "
                    f"writable folder {inside[0]} (and so the course around it). Bind only "
                    "what kernels read: the data and weights themselves, not a folder above "
                    "the course."
                )
            binds.append(bwrap.Bind(self._reach(real), os.path.abspath(dest)))
        for folder, real in zip(folders, real_folders, strict=True):
            binds.append(bwrap.Bind(self._reach(real), folder, writable=True))
        return binds

    def _nproc(self) -> int | None:
        """RLIMIT_NPROC: the process limit for a uid of the sandbox's own; on top of what
        the grader's uid already runs otherwise; none for root (it ignores the limit)."""
        processes = self.settings.limits.processes
        if self.user.own:
            return processes
        return None if self.user.uid == 0 else processes + tasks_of(self.user.uid)

    def _pipe_with(self, text: str) -> int:
        read, write = os.pipe()
        os.write(write, text.encode())
        os.close(write)
        self._child_fds.append(read)
        return read

    def command(self, argv: list[str], environment: dict[str, str]) -> tuple[list[str], dict]:
        """The command line that runs ``argv`` in the sandbox, and its ``Popen`` arguments."""
        entry = self.cgroups.entry_fds()
        self._child_fds += entry
        setup = _ChildSetup(entry, self.stage, rlimits(self.settings.limits, self._nproc()))
        setup.user = self.user if self.user.own else None
        if not self.isolated:
            return list(argv), {"env": dict(environment), "preexec_fn": setup}
        self._info_fd, info = os.pipe()
        self._child_fds.append(info)
        fds = {"info": info, "passwd": self._pipe_with(bwrap.PASSWD)}
        fds["group"] = self._pipe_with(bwrap.GROUP)
        cmd = bwrap.command(
            self.settings.bwrap,
            self.binds,
            cwd=self.cwd,
            environment=environment,
            tmp_mb=self.settings.limits.tmp_mb,
            fds=fds,
        )
        popen = {"env": {"PATH": os.defpath}, "pass_fds": tuple(fds.values()), "preexec_fn": setup}
        return [*cmd, "--", *argv], popen

    def started(self, pid: int) -> bool:
        """After ``Popen``: close the child's descriptors here, read bubblewrap's report.

        False when bubblewrap reported nothing (it failed before its sandbox existed).
        """
        self.pid = pid
        for fd in self._child_fds:
            os.close(fd)
        self._child_fds = []
        if not self.isolated:
            return True
        text, deadline = b"", time.monotonic() + INFO_SECONDS
        while self._info_fd is not None and time.monotonic() < deadline:
            ready, _, _ = select.select([self._info_fd], [], [], 0.1)
            chunk = os.read(self._info_fd, 65536) if ready else b""
            text += chunk
            with contextlib.suppress(ValueError):
                self.info = json.loads(text)
                break
            if ready and not chunk:
                break  # bubblewrap closed it: it failed
        return bool(self.info)

    @property
    def kernel_pid(self) -> int | None:
        """Host pid of the command itself (PID 2 of the sandbox, under bubblewrap's init)."""
        if not self.isolated:
            return self.pid
        init = self.info.get("child-pid")
        if self._kernel_pid is None and init:
            for pid in self.processes():
                with contextlib.suppress(OSError, IndexError):
                    status = Path(f"/proc/{pid}/status").read_text()
                    nspid = next(line for line in status.splitlines() if line.startswith("NSpid"))
                    if int(_stat_fields(pid)[1]) == init and nspid.split()[-1] == "2":
                        self._kernel_pid = pid
        return self._kernel_pid if self._kernel_pid and _alive(self._kernel_pid) else None

    def processes(self) -> set[int]:
        """Host pids of every live process of the sandbox (bubblewrap's own included)."""
        found = {pid for pid in self.cgroups.pids() if _alive(pid)}
        if self.pid is not None and _alive(self.pid):
            found.add(self.pid)
        if self.info.get("pid-namespace"):
            found |= _in_pid_namespace(self.info["pid-namespace"])
        return found

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the command's process group (SIGKILL: see :meth:`kill`)."""
        if signum == signal.SIGKILL:
            self.kill()
            return
        pid = self.kernel_pid
        if pid is not None:
            try:
                os.killpg(pid, signum)
            except OSError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)

    def kill(self) -> None:
        """SIGKILL to bubblewrap's process group, every task of the cgroups and namespace."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        self.cgroups.kill()
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        """Kill what is left, wait till it is gone, then undo the rest; again: nothing."""
        if self.closed:
            return
        self.closed = True
        self.kill()
        deadline = time.monotonic() + KILL_SECONDS
        left = self.processes()
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            self.kill()
            left = self.processes()
        self.cgroups.remove()
        if left:  # never give a folder back while something of the sandbox may still write
            log.warning("sandbox processes %s outlived %.0f s of SIGKILL", left, KILL_SECONDS)
        else:
            for lent in self.lent:
                give_back(lent)
            self.user.release()
        self.stage.remove()
        for fd in [*self._child_fds, *([self._info_fd] if self._info_fd is not None else [])]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._child_fds, self._info_fd = [], None
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


class _ChildSetup:
    """What the child does between ``fork`` and ``exec`` (only system calls: the grader may
    run threads): enter the cgroups, make the stage binds, set the rlimits, drop to the
    sandbox's uid."""

    def __init__(self, entry: list[int], stage: Stage, pairs: list) -> None:
        self.entry, self.stage, self.pairs = entry, stage, pairs
        self.user: HostUser | None = None

    def __call__(self) -> None:
        for fd in self.entry:
            os.write(fd, b"0")
        self.stage.enter()
        set_rlimits(self.pairs)
        if self.user is not None:
            os.setgroups([])
            os.setgid(self.user.gid)
            os.setuid(self.user.uid)


def run(
    settings: Settings,
    argv: list[str],
    *,
    cwd: str | None = None,
    environment: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess:
    """Run ``argv`` in a sandbox of its own and wait (its output captured); then close it."""
    sandbox = Sandbox.open(settings, cwd)
    try:
        env = environment or base_environment(sandbox.home, argv[0])
        cmd, popen = sandbox.command(argv, env)
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
        sandbox.started(process.pid)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            sandbox.kill()
            out, err = process.communicate(timeout=KILL_SECONDS)
        return subprocess.CompletedProcess(cmd, process.returncode, out.decode(), err.decode())
    finally:
        sandbox.close()


def check_settings(settings: Settings) -> None:
    """Refuse settings no sandbox can honour (before anything is made)."""
    for dest in settings.read_only:
        if not os.path.isabs(dest) or os.path.normpath(dest) == "/":
            raise SandboxError(
                f"c.SandboxProvisioner.read_only maps {dest!r}: each key must be an absolute "
                "path inside the sandbox other than '/' (e.g. '/data/cifar-10-batches-py')."
            )
